"""Classic interpolation baselines on the same output grid as isrnet (SimpleITK resampling)."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from isrnet.imageio.geometry import restore_axes, slices_first, upsampled_volume, output_positions
from isrnet.imageio.reader_writer import from_sitk, to_sitk
from isrnet.imageio.volume import Volume

INTERPOLATORS = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear,
                 "cubic B-spline": sitk.sitkBSpline, "windowed sinc": sitk.sitkHammingWindowedSinc}
SHORT_NAMES = {"nearest": "nearest", "linear": "linear", "cubic": "cubic B-spline", "sinc": "windowed sinc"}


def classic_upsample(volume: Volume, factor: float, slice_axis: int, method: str) -> Volume:
    """`volume` resampled along `slice_axis` onto isrnet's output grid (z0 + j s / f) with a classic method."""
    stack = slices_first(volume, slice_axis)
    count = len(output_positions(stack.shape[0], factor))
    grid = upsampled_volume(stack, np.zeros((count,) + stack.shape[1:], np.float32), factor)
    image = sitk.Resample(to_sitk(stack.with_array(stack.array.astype(np.float32))), to_sitk(grid),
                          sitk.Transform(), INTERPOLATORS[method], 0.0, sitk.sitkFloat32)
    return restore_axes(from_sitk(image), slice_axis)
