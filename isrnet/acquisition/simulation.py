"""Slice-profile simulation: how a thick-slice acquisition is made from a finer one.

An MR slice integrates signal over its thickness (slice profile, Gaussian or rect with FWHM = thickness),
then slices are sampled every `spacing`. Plain decimation is the infinitely-thin case (profile 'none').
'trapezoid' (flat top of half the FWHM, linear flanks) is a profile between the two that benchmarks use to test
the estimator on a shape it does not model; 'rf' is a windowed-sinc RF pulse's (mr_physics.rf_profile: nearly a box
with soft edges and side lobes), which mrft's acquisition physics draws; plans choose between ACQUISITION_PROFILES.
One implementation shared by dataset conversion (the demo), `mrft`, `ssft`, the estimator, benchmarks and tests.
"""
from __future__ import annotations

import math

import numpy as np

from isrnet.acquisition.mr_physics import RF_REACH, RF_TIME_BANDWIDTH, rf_profile

PROFILES = ("gaussian", "rect", "trapezoid", "rf", "none")
ACQUISITION_PROFILES = ("gaussian", "rect")  # what a real slice can be ('none' is decimation)
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
TRAPEZOID_SUBSAMPLES = 16  # points per fine voxel where the trapezoid and the RF profile are averaged
GAUSSIAN_REACH = 4.0  # sigmas: the cut-off is uneven around fractional centres, so keep its mass negligible


def profile_weights(length: int, positions: np.ndarray, thickness_voxels: float,
                    profile: str = "gaussian", time_bandwidth: float = RF_TIME_BANDWIDTH) -> np.ndarray:
    """[len(positions), length] weights: thick slice k integrates the fine slices around positions[k].

    The profile is evaluated at the exact (possibly fractional) centre, so a shifted slice is not blurred
    further by interpolation; weights are renormalised at the volume's edges. 'none' (or a thickness below
    one fine voxel) is linear interpolation, i.e. an infinitely thin slice. `time_bandwidth` applies to 'rf'.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown slice profile '{profile}'; use one of {', '.join(PROFILES)}")
    positions = np.asarray(positions, dtype=np.float64)
    grid = np.arange(length, dtype=np.float64)[None, :]
    distance = grid - positions[:, None]
    if profile == "none" or thickness_voxels <= 1.0:
        weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    elif profile == "gaussian":
        sigma = thickness_voxels * FWHM_TO_SIGMA
        weights = np.where(np.abs(distance) <= GAUSSIAN_REACH * sigma + 1.0, np.exp(-0.5 * (distance / sigma) ** 2), 0.0)
    elif profile == "rect":  # overlap of each fine voxel [i - 1/2, i + 1/2] with [p - T/2, p + T/2]
        half = thickness_voxels / 2.0
        weights = np.clip(np.minimum(distance + 0.5, half) - np.maximum(distance - 0.5, -half), 0.0, None)
    elif profile == "rf":  # averaged over each fine voxel
        inside = (np.arange(TRAPEZOID_SUBSAMPLES) + 0.5) / TRAPEZOID_SUBSAMPLES - 0.5
        weights = np.mean([rf_profile(distance + u, thickness_voxels, time_bandwidth) for u in inside], axis=0)
    else:  # trapezoid: 1 within T/4 of the centre, 0 beyond 3T/4 (FWHM T), averaged over each fine voxel
        top, base = thickness_voxels / 4.0, 3.0 * thickness_voxels / 4.0
        inside = (np.arange(TRAPEZOID_SUBSAMPLES) + 0.5) / TRAPEZOID_SUBSAMPLES - 0.5
        weights = np.mean([np.clip((base - np.abs(distance + u)) / (base - top), 0.0, 1.0) for u in inside], axis=0)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return weights


def sample_thick(array: np.ndarray, axis: int, positions: np.ndarray, thickness_voxels: float,
                 profile: str = "gaussian", time_bandwidth: float = RF_TIME_BANDWIDTH) -> np.ndarray:
    """Thick slices of `array` centred at continuous `positions` along `axis` (float32)."""
    weights = profile_weights(array.shape[axis], positions, thickness_voxels, profile,
                              time_bandwidth).astype(np.float32)
    moved = np.moveaxis(np.asarray(array, dtype=np.float32), axis, 0)
    result = np.tensordot(weights, moved, axes=(1, 0))
    return np.moveaxis(result, 0, axis).astype(np.float32)


def profile_radius(thickness_voxels: float, profile: str) -> int:
    """Fine voxels a slice profile reaches beyond its centre (0 for thin slices: linear interpolation)."""
    if profile == "none" or thickness_voxels <= 1.0:
        return 0
    if profile == "gaussian":
        return int(math.ceil(GAUSSIAN_REACH * thickness_voxels * FWHM_TO_SIGMA + 1.0))
    if profile == "trapezoid":
        return int(math.ceil(0.75 * thickness_voxels + 0.5))
    if profile == "rf":
        return int(math.ceil(RF_REACH * thickness_voxels + 0.5))
    return int(math.ceil(thickness_voxels / 2.0 + 0.5))


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
    return sample_thick(array, axis, positions, thickness_voxels, profile), positions
