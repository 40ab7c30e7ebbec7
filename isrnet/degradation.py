"""Slice-profile simulation: how a thick-slice acquisition is made from a finer one.

An MR slice integrates signal over its thickness (slice profile, Gaussian or rect with FWHM = thickness),
then slices are sampled every `spacing`. Plain decimation is the infinitely-thin case (profile 'none').
One implementation shared by dataset conversion (the demo), `mrft`, `ssft`, benchmarks and tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

PROFILES = ("gaussian", "rect", "none")
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def slice_profile_kernel(thickness_voxels: float, profile: str = "gaussian") -> np.ndarray:
    """Normalised 1D kernel of a slice with FWHM `thickness_voxels` (in units of the fine grid)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown slice profile '{profile}'; use one of {', '.join(PROFILES)}")
    if profile == "none" or thickness_voxels <= 1e-6:
        return np.ones(1)
    if profile == "gaussian":
        sigma = thickness_voxels * FWHM_TO_SIGMA
        radius = max(1, int(math.ceil(3.0 * sigma)))
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
    else:  # rect of width `thickness_voxels`, partial weights at both ends
        half = thickness_voxels / 2.0
        radius = int(math.ceil(half - 0.5)) if half > 0.5 else 0
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = np.clip(half + 0.5 - np.abs(x), 0.0, 1.0)
    return kernel / kernel.sum()


def blur_along(array: np.ndarray, axis: int, thickness_voxels: float, profile: str = "gaussian") -> np.ndarray:
    """Apply the slice profile along `axis` (edges: nearest)."""
    kernel = slice_profile_kernel(thickness_voxels, profile)
    if kernel.size == 1:
        return array.astype(np.float32, copy=True)
    return ndimage.convolve1d(array.astype(np.float32), kernel.astype(np.float32), axis=axis, mode="nearest")


def sample_along(array: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """Slices at continuous `positions` along `axis` (linear interpolation; exact at integers)."""
    positions = np.asarray(positions, dtype=np.float64)
    lower = np.clip(np.floor(positions).astype(int), 0, array.shape[axis] - 1)
    upper = np.clip(lower + 1, 0, array.shape[axis] - 1)
    weight = (positions - lower).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = -1
    weight = weight.reshape(shape)
    return np.take(array, lower, axis=axis) * (1 - weight) + np.take(array, upper, axis=axis) * weight


def thick_slice_positions(length: int, step: float, offset: float = 0.0) -> np.ndarray:
    """Fine-grid positions offset, offset + step, ... that lie inside [0, length - 1]."""
    count = int(math.floor((length - 1 - offset) / step + 1e-6)) + 1
    return offset + step * np.arange(max(count, 0), dtype=np.float64)


def simulate_thick_slices(array: np.ndarray, axis: int, step: float, thickness_voxels: float,
                          profile: str = "gaussian", offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a thick-slice acquisition along `axis` of a fine array.

    `step` is the slice spacing and `thickness_voxels` the slice FWHM, both in fine voxels.
    Returns (low-resolution array, fine-grid position of each low-resolution slice).
    """
    positions = thick_slice_positions(array.shape[axis], step, offset)
    blurred = blur_along(array, axis, thickness_voxels, profile)
    return sample_along(blurred, axis, positions).astype(np.float32), positions
