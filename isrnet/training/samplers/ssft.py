"""Stage 3, `ssft`: training pairs from the anisotropic target volumes alone (never referenceTr/).

Two ways to build pairs, chosen by `sampler.pairs` in plans.json:
- 'inplane' (default; SMORE/ECLARE-like): a high-resolution in-plane axis is degraded with the
  acquisition's slice profile and spacing so it looks like the slice axis; the network learns to restore
  it. The images it sees are planes containing the real slice axis, resampled to square pixels (cubic)
  so structures have the size they have in the in-plane slices the network is applied to.
- 'slices': every second or third real slice is removed and predicted from the rest (test-time images,
  but twice the gap and thick targets).
- 'both': each sample is drawn from one of the two at random (half each).
With `wide_gap_share` > 0, that share of the training (not validation) in-plane pairs is simulated at twice the
slice spacing with the same thickness: the gap of hidden real slices, which the guard's witness
(training/hidden_slice_witness.py) predicts, so fine-tuning does not unlearn it; not where twice the gap is a
factor beyond those mrft trains on.
With `thickness_jitter` j > 0, each training (not validation) in-plane pair is simulated with the case's thickness
times a factor drawn log-uniformly from [1 / (1 + j), 1 + j], while the network is told the case's thickness: the
fine-tuned weights then restore the slices of any thickness in that range, so an estimated thickness that is off
by up to j costs less (documentation/training.md).
With `inplane_axis` 'matched', the in-plane axis that plays the slice axis is drawn per case with a chance inversely
proportional to the square of its spectral misfit (acquisition/estimation.py `inplane_axis_misfits`): the axis
that, blurred with the plan's profile, looks most like the real slice axis gives most pairs, so ssft learns from
inputs like the slices it is applied to (anatomy, phase-encode resolution and partial Fourier make the two
in-plane axes unlike each other). 'either' draws both equally; a case too small to measure draws both equally.

The slice profile (thickness and family) comes from each case's plan (joined to the preprocessed properties as
the record `slice_profile`), so a case planned with `cases.NAME.slice_profile.family=rect` is simulated with a
rect profile.
With `noise_matching` (default), simulated slices get white noise up to the acquisition's level (each case's
`noise_sigma`, measured on its background at preprocessing; acquisition/noise.py): the real slices the network is
applied to carry the full noise, simulated ones only what survives the profile's averaging. Cases without a noisy
background (sigma 0) are unchanged.
A time series (a 4D image, preprocessed as [T, Z, Y, X]) is one case: a sample draws it by its voxels, all frames
together, then one frame uniformly.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from isrnet.acquisition.estimation import inplane_axis_misfits
from isrnet.acquisition.noise import kept_noise_variance, top_up_noise
from isrnet.acquisition.slice_profile import SliceProfile, check_family, profile_of
from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import MIN_SLICES
from isrnet.intensity import mostly_foreground
from isrnet.stages import STAGES
from isrnet.training.samplers.base import (Batch, augment, block_length, cut_pair, pad_to,
                                           random_window, split_window, stack_samples)
from isrnet.training.samplers.mrft import FOREGROUND_TRIES

PAIR_MODES = ("inplane", "slices", "both")
AXIS_CHOICES = ("either", "matched")
# no wide pairs beyond the largest factor mrft trains on (the stage table's factor_range)
WIDE_GAP_MAX_FACTOR = float(STAGES["mrft"].sampler_defaults["factor_range"][1])


class SsftSampler:
    """Pairs from slices-first normalised volumes; `cases` holds (array [Z, Y, X], or [T, Z, Y, X] for a time
    series, properties) per case.

    A sample draws a case with a chance proportional to its voxels (a time series: all its frames' together),
    then one of its frames uniformly, then its pair within that frame. The validation band is the same region
    of every frame, so no frame of the series gives training pairs from it."""

    def __init__(self, cases: list[tuple[np.ndarray, dict]], pairs: str = "inplane", context: int = 4,
                 targets_per_sample: int = 3, split: str = "train", validation_fraction: float = 0.1,
                 noise_matching: bool = True, wide_gap_share: float = 0.0, thickness_jitter: float = 0.0,
                 inplane_axis: str = "either") -> None:
        if pairs not in PAIR_MODES:
            raise IsrnetError(f"unknown ssft pairs '{pairs}' (plans key sampler.pairs); use one of "
                              f"{', '.join(PAIR_MODES)}")
        if inplane_axis not in AXIS_CHOICES:
            raise IsrnetError(f"unknown ssft inplane_axis '{inplane_axis}' (plans key sampler.inplane_axis); use "
                              f"one of {', '.join(AXIS_CHOICES)}")
        for array, properties in cases:
            if array.ndim not in (3, 4):
                raise IsrnetError(f"case {properties['case']}: a preprocessed array of {array.ndim} axes; ssft "
                                  f"needs [Z, Y, X] or [T, Z, Y, X] (rerun isr_plan_and_preprocess)")
            if array.shape[-3] < MIN_SLICES:
                raise IsrnetError(f"case {properties['case']}: {array.shape[-3]} slices are too few to train on "
                                  f"(>= {MIN_SLICES}); rerun isr_plan_and_preprocess")
            check_family(_profile(properties).family, f"case {properties['case']} (plans key "
                                                      f"cases.{properties['case']}.slice_profile.family)")
        self.cases, self.pairs, self.context, self.targets = cases, pairs, context, targets_per_sample
        self.split, self.fraction, self.noise_matching = split, validation_fraction, bool(noise_matching)
        if not 0.0 <= wide_gap_share <= 1.0:
            raise IsrnetError(f"sampler.wide_gap_share {wide_gap_share} must be between 0 and 1")
        self.wide_gap_share = float(wide_gap_share) if split == "train" else 0.0  # validation: the case's own gap
        if not 0.0 <= thickness_jitter <= 1.0:
            raise IsrnetError(f"sampler.thickness_jitter {thickness_jitter} must be between 0 and 1")
        self.thickness_jitter = float(thickness_jitter) if split == "train" else 0.0  # validation: the plan's
        sizes = np.array([a.size for a, _ in cases], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        matched = inplane_axis == "matched" and pairs != "slices"
        self.axis_chances = [axis_chances(a, p) if matched else None for a, p in cases]  # None: either, equally

    def sample(self, rng: np.random.Generator, batch_size: int, patch: int) -> Batch:
        samples = []
        for _ in range(batch_size):
            index = int(rng.choice(len(self.cases), p=self.weights))
            array, properties = self.cases[index]
            if array.ndim == 4:  # 3D cases draw no frame: their pairs are those of before
                array = array[int(rng.integers(array.shape[0]))]
            mode = self.pairs if self.pairs != "both" else ("inplane", "slices")[int(rng.integers(2))]
            if mode == "inplane":
                samples.append(self._inplane(array, properties, rng, patch, self.axis_chances[index]))
            else:
                samples.append(self._slices(array, properties, rng, patch))
        return stack_samples(samples)

    def _inplane(self, array: np.ndarray, properties: dict, rng: np.random.Generator, patch: int,
                 chances: tuple[float, float] | None = None):
        s, dy, dx = properties["spacing"]
        slice_profile = _profile(properties)
        thickness, profile = slice_profile.thickness_mm, slice_profile.family
        s_gap = s
        wide_allowed = 2.0 * s / min(dy, dx) <= WIDE_GAP_MAX_FACTOR
        if self.wide_gap_share and wide_allowed and rng.random() < self.wide_gap_share:
            s_gap = 2.0 * s  # twice the spacing (the gap of hidden real slices), same thickness
        simulated = thickness  # the told thickness stays the plan's (see the module docstring)
        if self.thickness_jitter:
            spread = np.log1p(self.thickness_jitter)
            simulated = thickness * float(np.exp(rng.uniform(-spread, spread)))
        # the in-plane axis that plays the slice axis
        axis = int(rng.integers(1, 3)) if chances is None else 1 + int(rng.random() >= chances[0])
        d_axis, d_other = (dy, dx) if axis == 1 else (dx, dy)
        step, thickness_voxels = s_gap / d_axis, simulated / d_axis
        moved = np.moveaxis(array, axis, 0)  # [A, Z, O]
        length = block_length(step, thickness_voxels, profile, self.context)
        z_needed = int(np.ceil(patch * d_other / s)) + 3
        for _ in range(FOREGROUND_TRIES):
            block = moved[split_window(moved.shape[0], length, rng, self.fraction, self.split),
                          random_window(moved.shape[1], z_needed, rng),
                          random_window(moved.shape[2], patch, rng)]
            if mostly_foreground(block):
                break
        block = pad_to(np.asarray(block, dtype=np.float32), (length, 4, patch))
        context, positions, truth = cut_pair(block, step, thickness_voxels, profile, self.context,
                                             self.targets, rng)
        zoom = s / d_other
        context, truth = _square_pixels(context, zoom), _square_pixels(truth, zoom)
        context, truth = _crop_rows(context, truth, patch, rng)
        if self.noise_matching:
            context = top_up_noise(context, float(properties.get("noise_sigma", 0.0)),
                                   kept_noise_variance(thickness_voxels, profile), rng)
        context, positions, truth = augment(context, positions, truth, rng)
        return context, positions, truth, s_gap / min(dy, dx), thickness / s_gap

    def _slices(self, array: np.ndarray, properties: dict, rng: np.random.Generator, patch: int):
        s, dy, dx = properties["spacing"]
        thickness = _profile(properties).thickness_mm
        keep = int(rng.integers(2, 4)) if array.shape[0] >= 3 * (self.context - 1) + 1 else 2
        length = (self.context - 1) * keep + 1
        for _ in range(FOREGROUND_TRIES):
            block = array[random_window(array.shape[0], length, rng),
                          split_window(array.shape[1], patch, rng, self.fraction, self.split),
                          random_window(array.shape[2], patch, rng)]
            if mostly_foreground(block):
                break
        block = pad_to(np.asarray(block, dtype=np.float32), (length, patch, patch))
        context, positions, truth = cut_pair(block, float(keep), 0.0, "none", self.context, self.targets, rng)
        context, positions, truth = augment(context, positions, truth, rng)
        return context, positions, truth, keep * s / min(dy, dx), thickness / (keep * s)


def axis_chances(array: np.ndarray, properties: dict) -> tuple[float, float] | None:
    """The chance of in-plane axis 1 and 2 to play the slice axis in a case's pairs: inversely proportional to the
    square of its misfit at the plan's profile (a time series: measured on its first frame); None (both equally)
    where the case has too little anatomy to measure."""
    profile = _profile(properties)
    try:
        misfits = inplane_axis_misfits(array[0] if array.ndim == 4 else array, tuple(properties["spacing"]),
                                       profile.family, profile.thickness_mm)
    except IsrnetError:
        return None
    weights = 1.0 / np.maximum(np.asarray(misfits), 1e-12) ** 2
    first = float(weights[0] / weights.sum())
    return first, 1.0 - first


def _profile(properties: dict) -> SliceProfile:
    """The case's slice profile (thickness = spacing and gaussian where the plans decided none)."""
    return profile_of(properties.get("slice_profile"), properties["spacing"][0])


def _square_pixels(images: np.ndarray, zoom: float) -> np.ndarray:
    """Cubic-resample axis 1 (the real slice axis, spacing s) to the in-plane spacing."""
    if zoom <= 1.0 + 1e-6:
        return images
    return ndimage.zoom(images, (1.0, zoom, 1.0), order=3, mode="nearest", grid_mode=False)


def _crop_rows(context: np.ndarray, truth: np.ndarray, patch: int, rng: np.random.Generator):
    rows = random_window(context.shape[1], patch, rng)
    context, truth = context[:, rows], truth[:, rows]
    return pad_to(context, (context.shape[0], patch, patch)), pad_to(truth, (truth.shape[0], patch, patch))
