"""Geometry-exact volume operations used by converters: crop, block average, isotropic resampling."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from isrnet.imageio.reader_writer import to_sitk
from isrnet.imageio.volume import Volume


def crop(volume: Volume, box: tuple[slice, slice, slice]) -> Volume:
    """Sub-volume `volume.array[box]` (steps of 1); the origin moves to the first kept voxel."""
    starts = [s.indices(n)[0] for s, n in zip(box, volume.shape)]
    return Volume(volume.array[box].copy(), volume.spacing, volume.index_to_world(starts),
                  volume.direction.copy(), volume.dicom_thickness_mm)


def foreground_box(array: np.ndarray, margin: int = 4, fraction: float = 0.01) -> tuple[slice, slice, slice]:
    """Bounding box (plus `margin` voxels) of voxels above `fraction` of the 99.9th percentile."""
    level = fraction * float(np.percentile(array, 99.9))
    mask = array > level
    if not mask.any():
        return tuple(slice(0, n) for n in array.shape)
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - margin), min(array.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)


def block_average(volume: Volume, factor: int = 2) -> Volume:
    """Average non-overlapping factor^3 blocks (odd edges cropped); each new voxel sits at its block centre."""
    shape = [n // factor for n in volume.shape]
    array = volume.array[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor].astype(np.float32)
    array = array.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))
    centre = volume.index_to_world([(factor - 1) / 2.0] * 3)
    spacing = tuple(s * factor for s in volume.spacing)
    return Volume(array.astype(np.float32), spacing, centre, volume.direction.copy(), volume.dicom_thickness_mm)


def resample_isotropic(volume: Volume, spacing: float | None = None, bspline: bool = True) -> Volume:
    """Resample to isotropic `spacing` (default: the finest axis) inside the original field of view.

    Same origin and direction; B-spline (or linear) interpolation, overshoot clipped to the input range.
    """
    spacing = float(min(volume.spacing) if spacing is None else spacing)
    size = [int(np.floor((n - 1) * s / spacing + 1e-6)) + 1 for n, s in zip(volume.shape, volume.spacing)]
    image = to_sitk(volume.with_array(volume.array.astype(np.float32)))
    interpolator = sitk.sitkBSpline if bspline else sitk.sitkLinear
    resampled = sitk.Resample(image, size[::-1], sitk.Transform(), interpolator, image.GetOrigin(),
                              (spacing,) * 3, image.GetDirection(), 0.0, sitk.sitkFloat32)
    array = np.clip(sitk.GetArrayFromImage(resampled), float(volume.array.min()), float(volume.array.max()))
    return Volume(array.astype(np.float32), (spacing,) * 3, volume.origin.copy(), volume.direction.copy(),
                  volume.dicom_thickness_mm)
