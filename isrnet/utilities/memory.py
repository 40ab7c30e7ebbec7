"""Keeping a long run's memory flat: large arrays handed back to the system as soon as they are freed.

glibc's malloc serves blocks above its mmap threshold from their own mappings, returned to the system when freed,
but raises that threshold each time such a block is freed, so that later blocks of a similar size come from the
heap, where frames of different sizes fragment it and the peak resident memory creeps up with every frame of a time
series. A fixed threshold turns the raising off: the heap serves the same sizes from the first frame on, and the
largest blocks keep their own mappings. It is glibc's own upper limit for the raised threshold, so no block pays
more page faults than it could by default; lower thresholds cost time (documentation/time_series.md has the
measurements). Set only for time series.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

MMAP_THRESHOLD_BYTES = 32 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
