"""A simulated clinical thick-slice acquisition of a fine volume, with exact geometry.

The voxel values come from `isrnet.acquisition.simulate_thick_slices` (the one slice-profile
simulation); this module only adds the geometry: low-resolution slice k lies at fine index
`positions[k]` along the slice axis, so its spacing there is `step` fine voxels.
"""
from __future__ import annotations

import numpy as np

from isrnet.acquisition import simulate_thick_slices
from isrnet.imageio.volume import Volume
from dataset_conversion.resampling import crop


def superior_inferior_axis(volume: Volume) -> int:
    """The array axis whose world direction is closest to superior-inferior (largest |LPS z|)."""
    return int(np.argmax(np.abs(volume.direction[2, :])))


def fit_to_step(volume: Volume, axis: int, step: int) -> Volume:
    """Drop trailing slices along `axis` so it holds step*m + 1 slices: the thick-slice grid then
    starts and ends on fine slices, and upsampling it by `step` gives exactly the fine grid."""
    keep = (volume.shape[axis] - 1) // step * step + 1
    box = [slice(None)] * 3
    box[axis] = slice(0, keep)
    return crop(volume, tuple(box))


def simulate_acquisition(fine: Volume, axis: int, step: int, thickness_voxels: float,
                         profile: str = "gaussian", offset: float = 0.0) -> Volume:
    """Thick slices every `step` fine voxels along `axis` (FWHM `thickness_voxels`), float32.

    Origin = world position of fine index `offset` along `axis`; spacing[axis] = step * fine spacing;
    slice_thickness = thickness_voxels * fine spacing (mm).
    """
    array, positions = simulate_thick_slices(fine.array, axis, step, thickness_voxels, profile, offset)
    first = np.zeros(3)
    first[axis] = positions[0]
    spacing = list(fine.spacing)
    spacing[axis] = fine.spacing[axis] * step
    return Volume(array.astype(np.float32), tuple(spacing), fine.index_to_world(first), fine.direction.copy(),
                  thickness_voxels * fine.spacing[axis])
