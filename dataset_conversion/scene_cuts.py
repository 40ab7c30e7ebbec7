"""Scene cuts in a clip (frame-difference test) and splitting a clip into cut-free segments."""
from __future__ import annotations

import numpy as np

# A cut changes the mean absolute grey value difference far more than motion does (bikes.mp4:
# cuts 0.20-0.33, fastest motion 0.08, median 0.018 on a [0, 1] scale).
ABSOLUTE_THRESHOLD = 0.12
RELATIVE_THRESHOLD = 5.0


def detect_scene_cuts(frames: np.ndarray) -> list[int]:
    """Frame indices t (first frame of a new scene) where frame t differs abruptly from frame t - 1."""
    if len(frames) < 2:
        return []
    difference = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2))
    level = max(ABSOLUTE_THRESHOLD, RELATIVE_THRESHOLD * float(np.median(difference)))
    return [int(t) + 1 for t in np.flatnonzero(difference > level)]


def split_at_cuts(length: int, cuts: list[int]) -> list[tuple[int, int]]:
    """[start, stop) frame ranges between cuts: (250, [30, 76]) -> [(0, 30), (30, 76), (76, 250)]."""
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < length) + [length]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
