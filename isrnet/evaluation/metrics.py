"""PSNR and SSIM of a prediction against a reference, compared at the same physical positions.

- The prediction is resampled onto the reference grid (SimpleITK, linear; exact where grids coincide), so
  predictions with other extents or grids are compared correctly; voxels outside the prediction are ignored.
- Mask: reference foreground (isrnet.intensity.foreground_mask up to its 99.9th percentile), inside the
  prediction's extent.
- Data range: 99.9th percentile minus minimum of the reference inside the mask (robust to a few hot voxels).
- SSIM: 3D, Gaussian window (sigma 1.5), computed on the whole overlap and averaged inside the mask.
- "synthesised" slices are reference slices that lie farther than a quarter reference spacing from every
  input slice (the slices the method had to invent); "all" uses every slice.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from isrnet.imageio.reader_writer import to_sitk
from isrnet.intensity import foreground_mask
from isrnet.utilities.psnr import psnr_from_mse
from isrnet.imageio.volume import Volume


def on_reference_grid(prediction: Volume, reference: Volume) -> np.ndarray:
    """The prediction resampled onto the reference grid; NaN outside the prediction."""
    image = sitk.Resample(to_sitk(prediction.with_array(prediction.array.astype(np.float32))),
                          to_sitk(reference.with_array(np.zeros(reference.shape, np.float32))),
                          sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(image)


def synthesised_slices(reference: Volume, slice_axis: int, input_positions: np.ndarray) -> np.ndarray:
    """Boolean per reference slice along `slice_axis`: True where no input slice lies (world positions [N, 3])."""
    count = reference.shape[slice_axis]
    index = np.zeros((count, 3))
    index[:, slice_axis] = np.arange(count)
    centres = reference.index_to_world(index)
    normal = reference.direction[:, slice_axis]
    reference_coordinate = centres @ normal
    input_coordinate = np.asarray(input_positions, dtype=np.float64).reshape(-1, 3) @ normal
    distance = np.abs(reference_coordinate[:, None] - input_coordinate[None, :]).min(axis=1)
    return distance > 0.25 * reference.spacing[slice_axis]


def data_range_of(truth: np.ndarray) -> float:
    """The data range of the truth's voxels (inside the mask): 99.9th percentile - minimum; for a constant truth
    its value (or 1)."""
    value = float(np.percentile(truth, 99.9) - truth.min())
    return value if value > 0 else float(abs(truth.max())) or 1.0


def psnr(prediction: np.ndarray, reference: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    """PSNR inside `mask`."""
    return psnr_from_mse(float(np.mean((prediction[mask].astype(np.float64) - reference[mask]) ** 2)), data_range)


def ssim(prediction: np.ndarray, reference: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity  # imported here: training needs PSNR only

    filled = np.where(np.isfinite(prediction), prediction, reference)
    _, ssim_map = structural_similarity(reference.astype(np.float64), filled.astype(np.float64),
                                        data_range=data_range, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    return float(ssim_map[mask].mean())


def compare(prediction: Volume, reference: Volume, slice_axis: int | None = None,
            input_positions: np.ndarray | None = None) -> dict[str, float]:
    """PSNR/SSIM over all slices and (when the input slice positions are known) over synthesised ones."""
    values = on_reference_grid(prediction, reference)
    truth = reference.array.astype(np.float32)
    mask = foreground_mask(truth, high_percentile=99.9) & np.isfinite(values)
    if not mask.any():
        raise ValueError("prediction and reference do not overlap inside the reference foreground")
    data_range = data_range_of(truth[mask])
    result = {"psnr_all": psnr(values, truth, mask, data_range), "ssim_all": ssim(values, truth, mask, data_range),
              "data_range": data_range, "voxels_compared": int(mask.sum())}
    if input_positions is not None and slice_axis is not None:
        shape = [1, 1, 1]
        shape[slice_axis] = -1
        synthetic = mask & synthesised_slices(reference, slice_axis, input_positions).reshape(shape)
        if synthetic.any():
            result["psnr_synth"] = psnr(values, truth, synthetic, data_range)
            result["ssim_synth"] = ssim(values, truth, synthetic, data_range)
    return result
