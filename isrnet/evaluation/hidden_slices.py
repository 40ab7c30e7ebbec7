"""Hidden-slice scoring: how well a method predicts real slices that were removed from a real scan.

Keep every K-th real slice along the slice axis (`thin_case`), let each method predict the removed slices from
the kept ones, compare with the real removed slices (`score_output`). A removed slice is itself a thick slice,
so each method's output is read as a continuous signal along the slice axis (linear between its output
slices), blurred with a Gaussian whose FWHM is searched from 0 to `MAX_FWHM` removed-slice spacings in steps of
`FWHM_STEP`, and sampled at the removed slice's position; the best width counts (per method and case), so no
method wins or loses by sharpness alone. PSNR inside the head (the truth's foreground) with the truth's data
range, as `metrics.compare` defines them. Methods are asked for `SAMPLES_PER_SLICE` output slices per original
slice spacing, so the continuous signal holds what they synthesise between the removed positions too.

The network then works at K times the user's factor and with a gap (thickness / spacing about 1 / K): the
score ranks methods on the user's own scans; it is not the score at the user's own factor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.evaluation.metrics import data_range_of, psnr, ssim
from isrnet.imageio.geometry import MIN_SLICES, restore_axes, slice_axis_of, slices_first
from isrnet.imageio.volume import Volume
from isrnet.intensity import foreground_mask

DEFAULT_KEEP_EVERY = 2
DEFAULT_CLASSIC = ("linear", "cubic")  # short names (baselines.SHORT_NAMES); the windowed sinc is far slower densely
MAX_FWHM = 3.0  # in removed-slice spacings
FWHM_STEP = 0.25
FWHM_GRID = tuple(round(FWHM_STEP * i, 4) for i in range(int(round(MAX_FWHM / FWHM_STEP)) + 1))
SAMPLES_PER_SLICE = 4  # output slices per original slice spacing that every method is asked for
_QUADRATURE = 16  # integration points per output-slice spacing for the blur of the continuous signal


@dataclass
class ThinnedCase:
    """One scan with every `keep_every`-th slice kept: the input of every method, and the truth it is scored on."""
    name: str
    thinned: Volume  # the kept slices, in the scan's own geometry (slice spacing keep_every x the scan's)
    truth: np.ndarray  # the removed real slices, slices first [R, H, W]
    removed: np.ndarray  # their indices in the scan (slice units; kept slice j is scan slice j * keep_every)
    mask: np.ndarray  # head mask of the removed slices [R, H, W]
    data_range: float
    slice_axis: int
    keep_every: int
    slice_spacing: float  # mm between the scan's own slices (= between removed and kept neighbours)

    @property
    def samples(self) -> int:
        """The factor every method is asked for on the thinned volume: SAMPLES_PER_SLICE per scan slice."""
        return self.keep_every * SAMPLES_PER_SLICE


def ordinal(number: int) -> str:
    """2 -> '2nd', 3 -> '3rd', 4 -> '4th' (as in 'every 2nd slice')."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def hidden_slice_axis(spacing: tuple[float, float, float]) -> int:
    """The axis whose real slices are hidden: the largest spacing, and where array axis 0 ties for it, axis 0 (the
    file's stacking axis: DICOM and NIfTI slices), along which a near-isotropic 2D multi-slice scan's real slices
    lie; `slice_axis_of` alone would take the last tied axis, an in-plane one for such scans."""
    if np.isclose(spacing[0], max(spacing), rtol=1e-4):
        return 0
    return slice_axis_of(spacing)


def kept_slice_count(slices: int, keep_every: int) -> int:
    return (slices - 1) // keep_every + 1


def thin_case(name: str, volume: Volume, slice_axis: int, keep_every: int = DEFAULT_KEEP_EVERY,
              min_kept: int = MIN_SLICES) -> ThinnedCase:
    """`volume` with every `keep_every`-th slice kept (from the first; trailing slices after the last kept one
    are dropped: nothing lies beyond them to interpolate from)."""
    if keep_every < 2:
        raise IsrnetError(f"--keep-every must be at least 2 (got {keep_every}): with 1 nothing is hidden")
    stack = slices_first(volume, slice_axis)
    count = stack.shape[0]
    kept_count = kept_slice_count(count, keep_every)
    if kept_count < min_kept:
        raise IsrnetError(f"{name}: {count} slices along the slice axis; keeping every {ordinal(keep_every)} leaves "
                          f"{kept_count}, fewer than the {min_kept} needed: use a smaller --keep-every or leave "
                          f"this case out")
    last = (kept_count - 1) * keep_every
    kept = np.arange(0, last + 1, keep_every)
    removed = np.array([i for i in range(last + 1) if i % keep_every])
    array = stack.array.astype(np.float32)
    spacing = (stack.spacing[0] * keep_every, stack.spacing[1], stack.spacing[2])
    thinned = Volume(np.ascontiguousarray(array[kept]), spacing, stack.origin.copy(), stack.direction.copy(),
                     volume.dicom_thickness_mm)
    head = foreground_mask(array, high_percentile=99.9)[removed]
    truth = array[removed]
    if not head.any():
        raise IsrnetError(f"{name}: the removed slices hold no foreground to compare")
    return ThinnedCase(name, restore_axes(thinned, slice_axis), truth, removed, head, data_range_of(truth[head]),
                       slice_axis, keep_every, float(stack.spacing[0]))


def blur_weights(output_count: int, step: float, positions: np.ndarray, fwhm: float) -> np.ndarray:
    """[len(positions), output_count]: the output slices' weights in the Gaussian-blurred (FWHM `fwhm`) continuous
    signal that is linear between output slices `step` apart, sampled at `positions` (all in scan slices; the
    signal is held constant beyond its ends). Width 0 samples the linear signal itself."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    fine_step = step / _QUADRATURE
    weights = np.zeros((len(positions), output_count))
    for row, position in enumerate(np.asarray(positions, dtype=np.float64)):
        if sigma > 0:
            x = np.arange(position - 4.0 * sigma, position + 4.0 * sigma + fine_step / 2, fine_step)
            kernel = np.exp(-0.5 * ((x - position) / sigma) ** 2)
            kernel /= kernel.sum()
        else:
            x, kernel = np.array([position]), np.ones(1)
        index = np.clip(x / step, 0, output_count - 1)
        low = np.floor(index).astype(int)
        high = np.minimum(low + 1, output_count - 1)
        np.add.at(weights[row], low, kernel * (1.0 - (index - low)))
        np.add.at(weights[row], high, kernel * (index - low))
    return weights


@dataclass
class HiddenSliceScore:
    psnr: float  # at the best width
    fwhm: float  # the best width, in removed-slice spacings
    on_edge: bool  # the best width is the grid's first or last
    psnr_unblurred: float
    ssim: float  # at the best width
    curve: dict[float, float]  # width -> PSNR
    estimate: np.ndarray  # the removed slices as this method predicts them at the best width [R, H, W]


def score_output(case: ThinnedCase, output: Volume) -> HiddenSliceScore:
    """Score one method's output on `case.thinned`'s upsampled grid at factor `case.samples`."""
    dense = slices_first(output, case.slice_axis).array.astype(np.float64)
    step = 1.0 / SAMPLES_PER_SLICE  # output slices per scan slice
    expected = (case.thinned.shape[case.slice_axis] - 1) * case.samples + 1
    if dense.shape[0] != expected or dense.shape[1:] != case.truth.shape[1:]:
        raise ValueError(f"output of shape {dense.shape} is not the thinned volume at factor {case.samples}")
    flat = dense.reshape(dense.shape[0], -1)
    truth = case.truth.astype(np.float64)
    curve, best, best_estimate = {}, None, None
    for fwhm in FWHM_GRID:
        estimate = (blur_weights(dense.shape[0], step, case.removed.astype(np.float64), fwhm) @ flat)
        estimate = estimate.reshape(truth.shape)
        curve[fwhm] = psnr(estimate, truth, case.mask, case.data_range)
        if best is None or curve[fwhm] > curve[best]:
            best, best_estimate = fwhm, estimate
    score = float(np.mean([ssim(best_estimate[i], truth[i], case.mask[i], case.data_range)
                           for i in range(len(truth)) if case.mask[i].any()]))
    return HiddenSliceScore(curve[best], best, best in (FWHM_GRID[0], FWHM_GRID[-1]), curve[0.0], score, curve,
                            best_estimate.astype(np.float32))
