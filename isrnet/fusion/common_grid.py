"""The grid stacks are fused on, and each stack resampled onto it through its registration.

The grid has the reference stack's orientation, isotropic voxels (default: the finest in-plane spacing of all
stacks) and the union of the stacks' fields of view (or the reference's alone). Resampling is linear (SimpleITK);
voxels a stack does not cover are NaN, so coverage is exact and partial overlaps are known voxel by voxel.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import in_plane_axes, slice_axis_of
from isrnet.imageio.reader_writer import from_sitk, to_sitk
from isrnet.imageio.volume import Volume

FIELDS_OF_VIEW = ("union", "reference")
MAX_GRID_VOXELS = 600 ** 3  # refuse a grid this large (a wrong spacing or a stray stack far away)


def finest_in_plane_spacing(stacks: list[Volume]) -> float:
    return min(min(s.spacing[a] for a in in_plane_axes(slice_axis_of(s.spacing))) for s in stacks)


def _corners(volume: Volume) -> np.ndarray:
    """World positions of the 8 outer corners of the volume's voxels."""
    low, high = np.full(3, -0.5), np.asarray(volume.shape) - 0.5
    index = np.array([[(low, high)[(c >> k) & 1][k] for k in range(3)] for c in range(8)])
    return volume.index_to_world(index)


def common_grid(reference: Volume, stacks: list[Volume], transforms: list[sitk.Transform], spacing: float,
                field_of_view: str = "union") -> Volume:
    """An empty volume (zeros) on the fusion grid. `transforms[k]` maps reference points to stack k's points."""
    if field_of_view not in FIELDS_OF_VIEW:
        raise IsrnetError(f"unknown field of view '{field_of_view}'; use one of {', '.join(FIELDS_OF_VIEW)}")
    points = [_corners(reference)]
    if field_of_view == "union":
        for stack, transform in zip(stacks, transforms):
            inverse = transform.GetInverse()
            points.append(np.array([inverse.TransformPoint(tuple(float(v) for v in p)) for p in _corners(stack)]))
    frame = reference.direction
    local = (np.concatenate(points) - reference.origin) @ frame  # coordinates along the reference's axes
    # voxel centres on the reference's lattice (origin + k * spacing): where the spacings agree, the reference
    # and every stack already on that lattice are sampled exactly, not interpolated half a voxel off
    first = np.floor(local.min(axis=0) / spacing + 0.5 + 1e-6).astype(int)
    last = np.ceil(local.max(axis=0) / spacing - 0.5 - 1e-6).astype(int)
    shape = np.maximum(last - first + 1, 1)
    if np.prod(shape.astype(np.float64)) > MAX_GRID_VOXELS:
        raise IsrnetError(f"the fused grid would be {' x '.join(map(str, shape))} voxels at {spacing:g} mm; choose "
                          f"a coarser --target-spacing or --field-of-view reference")
    origin = reference.origin + frame @ (first * spacing)
    return Volume(np.zeros(tuple(int(s) for s in shape), np.float32), (spacing,) * 3, origin, frame.copy())


def resample_onto(stack: Volume, grid: Volume, transform: sitk.Transform) -> np.ndarray:
    """Stack values on the grid (linear), NaN where the stack has no data."""
    image = sitk.Resample(to_sitk(stack.with_array(stack.array.astype(np.float32))), to_sitk(grid), transform,
                          sitk.sitkLinear, float("nan"), sitk.sitkFloat32)
    return from_sitk(image).array
