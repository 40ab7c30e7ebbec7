"""Intensity conventions, the one home: what counts as foreground, and how volumes are normalised.

- Foreground of a volume: voxels above its minimum plus FOREGROUND_LEVEL of its robust range (minimum to a high
  percentile). MR background is dark; used by the fingerprint (crop box, statistics), the metrics (the mask
  PSNR/SSIM are computed in) and the 'foreground' normalisation; its `bounding_box` is the fingerprint's crop box
  and prediction's anatomy box.
- A training patch is worth learning from when at least PATCH_FOREGROUND_SHARE of it lies above
  PATCH_FOREGROUND_LEVEL in normalised units (0 = the volume's 0.5th percentile, 1 = its 99.5th).
- Normalisation schemes (plans key `normalisation`) map a volume to about [0, 1] without clipping, so that
  prediction can invert it exactly: the robust range is computed from the volume itself, at preprocessing and at
  prediction alike (preprocessing.prepare_volume).
"""
from __future__ import annotations

import numpy as np

from isrnet.errors import IsrnetError

FOREGROUND_LEVEL = 0.05
PATCH_FOREGROUND_LEVEL = 0.1
PATCH_FOREGROUND_SHARE = 0.2
NORMALISATIONS = ("percentile_0.5_99.5", "foreground_percentile_0.5_99.5")
DEFAULT_NORMALISATION = NORMALISATIONS[0]


def foreground_mask(array: np.ndarray, high_percentile: float = 99.5) -> np.ndarray:
    """Voxels brighter than the minimum + 5 % of (the `high_percentile`th percentile - minimum)."""
    low, high = float(array.min()), float(np.percentile(array, high_percentile))
    return array > low + FOREGROUND_LEVEL * (high - low)


def bounding_box(mask: np.ndarray) -> list[list[int]]:
    """[[start, stop), ...] per axis of the non-zero region (whole array if the mask is empty)."""
    if not mask.any():
        return [[0, s] for s in mask.shape]
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append([int(hits[0]), int(hits[-1]) + 1])
    return box


def mostly_foreground(block: np.ndarray) -> bool:
    """A normalised training patch with enough anatomy in it (see the module docstring)."""
    return float(np.mean(block > PATCH_FOREGROUND_LEVEL)) >= PATCH_FOREGROUND_SHARE


def normalisation_range(array: np.ndarray, scheme: str = DEFAULT_NORMALISATION) -> tuple[float, float]:
    """(low, high) that `scheme` maps to 0 and 1: the 0.5th and 99.5th percentiles of the whole volume, or of
    its foreground (for volumes whose background is a large share of the field of view)."""
    if scheme not in NORMALISATIONS:
        raise IsrnetError(f"unknown normalisation '{scheme}' (plans key normalisation); use one of "
                          f"{', '.join(NORMALISATIONS)}")
    values = array
    if scheme.startswith("foreground_"):
        mask = foreground_mask(array)
        values = array[mask] if mask.any() else array
    low, high = np.percentile(values, [0.5, 99.5])
    return float(low), float(high)


def normalise(array: np.ndarray, low: float, high: float) -> tuple[np.ndarray, float, float]:
    """((array - low) / (high - low), offset, scale): no clipping, so `values * scale + offset` inverts it."""
    scale = high - low if high > low else 1.0
    return ((array.astype(np.float32) - low) / scale).astype(np.float32), float(low), float(scale)
