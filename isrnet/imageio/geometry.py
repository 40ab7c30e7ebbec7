"""Slice-axis logic and the geometry of the upsampled grid, shared by planner, preprocessing and predictor.

Grid convention: input slice spacing s, factor f (real). Output slices lie at z0 + j*s/f for
j = 0 .. floor((Z-1)*f), z0 being the first input slice. For integer f, input slice k is output slice k*f.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from isrnet.imageio.volume import Volume

# The two spacing-ratio limits isrnet uses, both "largest / smallest spacing <= limit":
# - a volume to super-resolve whose slice spacing is at most NEAR_ISOTROPIC_RATIO times its finest in-plane
#   spacing is already near-isotropic (nothing to super-resolve);
# - high-resolution material for mrft (kind hr_mr) must be isotropic within ISOTROPIC_RATIO on every axis.
NEAR_ISOTROPIC_RATIO = 1.2
ISOTROPIC_RATIO = 1.1
MIN_SLICES = 4  # along the slice axis: fewer cannot give a context window of two slices on each side
# Relative slack of spacing-ratio limits: file formats store spacing as float32 (1.2 mm reads as 1.2000000477).
RATIO_SLACK = 1e-6


def slice_axis_of(spacing: tuple[float, float, float]) -> int:
    """The array axis with the largest spacing (ties: the last such axis, as in stacked 2D series)."""
    spacing = np.asarray(spacing, dtype=float)
    return int(np.flatnonzero(np.isclose(spacing, spacing.max(), rtol=1e-4))[-1])


def in_plane_axes(slice_axis: int) -> tuple[int, int]:
    return tuple(a for a in range(3) if a != slice_axis)


def factor_of(spacing: tuple[float, float, float], slice_axis: int | None = None) -> float:
    """Upsampling factor: slice spacing / finest in-plane spacing."""
    axis = slice_axis_of(spacing) if slice_axis is None else slice_axis
    return float(spacing[axis]) / float(min(spacing[a] for a in in_plane_axes(axis)))


def ratio_within(ratio: float, limit: float) -> bool:
    """ratio <= limit, up to float32 rounding of the spacings the ratio comes from."""
    return ratio <= limit * (1.0 + RATIO_SLACK)


def is_near_isotropic(spacing: tuple[float, float, float], slice_axis: int | None = None) -> bool:
    """Slice spacing at most NEAR_ISOTROPIC_RATIO times the finest in-plane spacing (nothing to super-resolve)."""
    return ratio_within(factor_of(spacing, slice_axis), NEAR_ISOTROPIC_RATIO)


def is_isotropic(spacing: tuple[float, ...]) -> bool:
    """Every spacing within ISOTROPIC_RATIO of every other (material for mrft)."""
    return ratio_within(max(spacing) / min(spacing), ISOTROPIC_RATIO)


def transpose_for(slice_axis: int) -> tuple[list[int], list[int]]:
    """(forward, backward) axis orders that move `slice_axis` first and back again."""
    forward = [slice_axis] + list(in_plane_axes(slice_axis))
    backward = [int(i) for i in np.argsort(forward)]
    return forward, backward


def slices_first(volume: Volume, slice_axis: int) -> Volume:
    """The volume with its slice axis moved to array axis 0 (world positions unchanged)."""
    return volume.transposed(transpose_for(slice_axis)[0])


def restore_axes(volume: Volume, slice_axis: int) -> Volume:
    """Inverse of `slices_first`."""
    return volume.transposed(transpose_for(slice_axis)[1])


def output_positions(n_slices: int, factor: float) -> np.ndarray:
    """Continuous input-slice coordinates of the output slices: j / f for j = 0 .. floor((Z-1) f)."""
    if factor <= 0:
        raise ValueError("factor must be positive")
    count = int(math.floor((n_slices - 1) * factor + 1e-6)) + 1
    return np.arange(count, dtype=np.float64) / factor


@dataclass(frozen=True)
class UpsampledGrid:
    positions: np.ndarray  # continuous input-slice coordinate of every output slice
    spacing: tuple[float, float, float]  # of the output, slices first


def upsampled_grid(volume: Volume, factor: float) -> UpsampledGrid:
    """Output grid of a slices-first volume: same origin, direction and in-plane geometry."""
    positions = output_positions(volume.shape[0], factor)
    spacing = (volume.spacing[0] / factor, volume.spacing[1], volume.spacing[2])
    return UpsampledGrid(positions, spacing)


def upsampled_volume(volume: Volume, array: np.ndarray, factor: float) -> Volume:
    """Wrap an output array (slices first) in the geometry of the upsampled grid of `volume`."""
    grid = upsampled_grid(volume, factor)
    if array.shape[0] != len(grid.positions) or array.shape[1:] != volume.shape[1:]:
        raise ValueError(f"array shape {array.shape} does not fit the upsampled grid "
                         f"({len(grid.positions)}, {volume.shape[1]}, {volume.shape[2]})")
    return Volume(array, grid.spacing, volume.origin.copy(), volume.direction.copy(), volume.dicom_thickness_mm)


def input_slice_positions(volume: Volume, slice_axis: int) -> np.ndarray:
    """World positions [N, 3] of the slice centres of a volume along `slice_axis`."""
    index = np.zeros((volume.shape[slice_axis], 3))
    index[:, slice_axis] = np.arange(volume.shape[slice_axis])
    return volume.index_to_world(index)
