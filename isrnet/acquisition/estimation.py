"""The through-plane slice profile of a volume (family and FWHM), estimated from the volume itself.

Principle (ESPRESO's, as a spectral match instead of a GAN): anatomy is roughly isotropic, so an in-plane
axis blurred with the right profile and sampled at the slice spacing has the power spectrum of the slice
axis. The lines of a thick slice are themselves averaged over its thickness, so the match is made
symmetric: the slice-axis lines are also blurred with the candidate along an in-plane axis. Then both sides
carry the true profile along one axis and the candidate along another, and they agree when the two agree.
White noise (its level read off the background, Rayleigh) is modelled on both sides and subtracted.

What the data can tell: the width, well. The family, hardly: below the slice Nyquist frequency a rect of
FWHM T passes the band like a Gaussian of about 0.75 T; they differ only in aliased energy of about a percent
of the signal. So the family is 'gaussian' unless rect fits clearly better (FAMILY_MARGIN), and
`family_margin` says how clearly; `ssft` is nearly indifferent to that choice because the width follows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.optimize import minimize_scalar

from isrnet.acquisition.noise import background_noise_sigma
from isrnet.acquisition.simulation import (ACQUISITION_PROFILES, FWHM_TO_SIGMA, profile_radius, profile_weights,
                                           thick_slice_positions)
from isrnet.errors import IsrnetError
from isrnet.intensity import foreground_mask

SEARCH_RANGE = (0.25, 2.0)  # candidate FWHM / slice spacing
COARSE_STEPS, FINE_STEPS = 13, 9
SEGMENT = 16  # samples per spectrum segment (fewer for short stacks, never below MIN_SEGMENT)
MIN_SEGMENT = 8
MIN_SEGMENTS = 24  # segments per side and axis, below that the spectra are noise
COLUMNS = 32  # in-plane planes per axis that are used
OFFSETS = 4  # sampling phases averaged on the simulated side
FAMILY_MARGIN = 1.15  # rect only when its misfit is this much smaller than the Gaussian's
CONFIDENT_SPREAD = np.log(1.5)  # the two in-plane axes' widths this far apart (log) -> confidence 0
EQUIVALENCE_SAMPLES = 64  # profile samples per FWHM, and frequencies up to the slice Nyquist, of gaussian_equivalent
PLATEAU = 1.25  # widths whose misfit is within this factor of the best are "as good"
CONFIDENT_PLATEAU = np.log(2.0)  # a plateau this wide (max/min width, log) -> confidence 0


@dataclass(frozen=True)
class ProfileEstimate:
    """What the volume says about its slice profile."""
    family: str  # 'gaussian' or 'rect'
    fwhm_mm: float
    confidence: float  # 0..1: the two in-plane axes agree on the width, and few other widths fit as well
    family_margin: float  # misfit of the other family / misfit of the chosen one (>= 1 when rect was chosen)
    fits_mm: dict[str, float] = field(default_factory=dict)  # best FWHM per family
    noise_sigma: float = 0.0  # in the volume's units, from its background


def estimate_slice_profile(array: np.ndarray, spacing: tuple[float, float, float],
                           seed: int = 0) -> ProfileEstimate:
    """Estimate the profile along axis 0 of a slices-first array with `spacing` (slice, row, column) in mm.

    Raises IsrnetError when the volume has too few slices or too little anatomy for a spectrum.
    """
    match = _SpectralMatch(array, spacing, seed)
    fits = {family: match.best_width(family) for family in ACQUISITION_PROFILES}
    misfit = {family: fit[1] for family, fit in fits.items()}
    rect_clearly = misfit["gaussian"] > FAMILY_MARGIN * misfit["rect"]
    family = "rect" if rect_clearly else "gaussian"
    other = "gaussian" if family == "rect" else "rect"
    width, _, per_axis, plateau = fits[family]
    spread = abs(np.log(per_axis[0] / per_axis[1]))
    confidence = min(1.0 - spread / CONFIDENT_SPREAD, 1.0 - np.log(plateau[1] / plateau[0]) / CONFIDENT_PLATEAU)
    return ProfileEstimate(family, float(width), float(np.clip(confidence, 0.0, 1.0)),
                           float(misfit[other] / max(misfit[family], 1e-12)),
                           {f: float(fit[0]) for f, fit in fits.items()}, match.noise_sigma)


def _segment_index(masks: np.ndarray, length: int, hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row, start) of every window of `length` samples (every `hop`, default length // 4) lying wholly in the
    foreground."""
    if masks.shape[1] < length:
        return np.zeros(0, int), np.zeros(0, int)
    hop = hop or max(1, length // 4)
    inside = sliding_window_view(masks, length, axis=1)[:, ::hop].all(axis=2)
    rows, windows = np.nonzero(inside)
    return rows, windows * hop


def _gather(lines: np.ndarray, index: tuple[np.ndarray, np.ndarray], length: int) -> np.ndarray:
    """The segments [N, length] of `lines` at `index` (from _segment_index)."""
    rows, starts = index
    return lines[rows[:, None], starts[:, None] + np.arange(length)]


def foreground_segments(lines: np.ndarray, masks: np.ndarray, length: int,
                        hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows [N, length] of the rows of `lines` lying wholly in the foreground `masks` (every `hop` samples,
    default length // 4), and the start of each."""
    index = _segment_index(masks, length, hop)
    return _gather(lines, index, length), index[1]


@dataclass
class _Axis:
    """One in-plane axis: planes [Z, A, C] through it, and what does not depend on the candidate profile."""
    pixel: float  # mm along A
    planes: np.ndarray
    masks: np.ndarray
    lines: np.ndarray = field(init=False)  # the in-plane lines [Z * C, A]
    line_masks: np.ndarray = field(init=False)
    slice_lines: np.ndarray = field(init=False)  # the slice-axis lines [A * C, Z]
    slice_masks: np.ndarray = field(init=False)
    white_noise: np.ndarray | None = None  # slice-side noise power per unit kernel energy (set with the length)
    cache: dict | None = None  # what misfit needs whatever the candidate (_SpectralMatch._candidate_independent)

    def __post_init__(self) -> None:
        z, a = self.planes.shape[:2]
        self.lines = self.planes.transpose(0, 2, 1).reshape(-1, a)
        self.line_masks = self.masks.transpose(0, 2, 1).reshape(-1, a)
        self.slice_lines = self.planes.transpose(1, 2, 0).reshape(-1, z)
        self.slice_masks = self.masks.transpose(1, 2, 0).reshape(-1, z)

    def sampled_masks(self, positions: np.ndarray) -> np.ndarray:
        """The in-plane lines' foreground at (the nearest voxel of) sampling positions."""
        return self.line_masks[:, np.clip(np.round(positions).astype(int), 0, self.line_masks.shape[1] - 1)]


class _SpectralMatch:
    """Both spectra for any candidate profile, over two in-plane axes."""

    def __init__(self, array: np.ndarray, spacing: tuple[float, float, float], seed: int) -> None:
        array = np.asarray(array, dtype=np.float32)
        spacing = tuple(float(s) for s in spacing)
        slices = array.shape[0]
        if slices < MIN_SEGMENT:
            raise IsrnetError(f"{slices} slices are too few to estimate the slice profile (>= {MIN_SEGMENT})")
        mask = foreground_mask(array)
        if not mask.any():
            raise IsrnetError("no foreground to estimate the slice profile from")
        self.noise_sigma = background_noise_sigma(array, mask)
        low, high = np.percentile(array[mask], [0.5, 99.5])
        scale = float(high - low) if high > low else 1.0
        normalised = (array - low) / scale
        self.noise_variance = (self.noise_sigma / scale) ** 2
        self.spacing = spacing[0]
        rng = np.random.default_rng(seed)
        self.axes = []
        for axis in (1, 2):
            other = 3 - axis
            share = mask.mean(axis=(0, axis))
            candidates = np.flatnonzero(share > 0.2 * share.max())
            columns = np.sort(rng.choice(candidates, min(COLUMNS, candidates.size), replace=False))
            planes = np.moveaxis(np.take(normalised, columns, axis=other), axis, 1)  # [Z, A, C]
            plane_masks = np.moveaxis(np.take(mask, columns, axis=other), axis, 1)
            self.axes.append(_Axis(spacing[axis], planes, plane_masks))
        self.length = self._segment_length(slices)
        self.window = np.hanning(self.length + 2)[1:-1]
        centring = np.eye(self.length) - 1.0 / self.length  # the DFT at bins 1 .. L/2 of a centred, windowed segment
        self.transform = np.fft.rfft(np.eye(self.length), axis=0)[1:] @ (self.window[:, None] * centring)
        for axis in self.axes:  # the slice-axis segments keep their places whatever blur the candidate adds
            starts = foreground_segments(axis.slice_lines, axis.slice_masks, self.length)[1]
            axis.white_noise = self._noise_power(np.eye(slices), starts)
        self.bin_weights = self._bin_weights()

    def _segment_length(self, slices: int) -> int:
        length = min(SEGMENT, slices)
        while length >= MIN_SEGMENT:
            enough = all(foreground_segments(axis.slice_lines, axis.slice_masks, length)[0].shape[0] >= MIN_SEGMENTS
                         and self._in_plane_segments(axis, length) >= MIN_SEGMENTS for axis in self.axes)
            if enough:
                return length
            length //= 2
        raise IsrnetError("too little anatomy (too few slices, or an in-plane field of view too small) to estimate "
                          "the slice profile")

    def _in_plane_segments(self, axis: _Axis, length: int) -> int:
        """How many foreground segments the in-plane lines give when sampled at the slice spacing."""
        sampled = axis.sampled_masks(thick_slice_positions(axis.lines.shape[1], self.spacing / axis.pixel))
        return foreground_segments(sampled, sampled, length)[0].shape[0]

    def _power(self, segments: np.ndarray) -> np.ndarray:
        """Mean power spectrum (without DC) of the centred, windowed segments [N, L]. Each bin is a quadratic
        form of the segments' second moments, so one [L, L] product replaces N FFTs (the same numbers)."""
        if segments.shape[0] == 0:
            return np.full(self.length // 2, np.nan)
        segments = segments.astype(np.float64, copy=False)
        moments = segments.T @ segments / segments.shape[0]
        return np.real(np.einsum("kl,lm,km->k", self.transform, moments, self.transform.conj()))

    def _noise_power(self, covariance: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Expected power of centred, windowed segments of noise with `covariance`, averaged over `starts`."""
        if self.noise_variance == 0.0 or starts.size == 0:
            return np.zeros(self.length // 2)
        length = self.length
        centring = np.eye(length) - 1.0 / length
        basis = np.fft.rfft(np.eye(length), axis=0)[1:]  # [bins, L]: row k is the DFT at bin k
        unique, counts = np.unique(starts, return_counts=True)
        total = np.zeros(basis.shape[0])
        for start, count in zip(unique, counts):
            block = covariance[start:start + length, start:start + length]
            shaped = (self.window[:, None] * centring) @ block @ (centring * self.window[None, :])
            total += count * np.real(np.einsum("kl,lm,km->k", basis, shaped, basis.conj()))
        return self.noise_variance * total / counts.sum()

    def _bin_weights(self) -> np.ndarray:
        """Weight of each slice-axis frequency: (signal share of its power)^2 on the noisier axis; 0 where
        noise dominates (all 1 for clean data)."""
        weights = np.ones(self.length // 2)
        for axis in self.axes:
            power = self._power(foreground_segments(axis.slice_lines, axis.slice_masks, self.length)[0])
            weights = np.minimum(weights, np.clip(1.0 - axis.white_noise / np.maximum(power, 1e-12), 0.0, 1.0) ** 2)
        if np.count_nonzero(weights > 0.1) < 3:
            raise IsrnetError("the slice-axis spectrum is mostly noise; the slice profile cannot be estimated")
        return weights

    def _candidate_independent(self, axis: _Axis) -> dict:
        """What `misfit` needs of an axis whatever the candidate: the planes as [A, C, Z] (blurred along A, they
        are the slice-axis lines without a copy), the slice-axis segments' places, and per sampling phase the
        in-plane positions and their segments' places. Computed once per axis."""
        if axis.cache is None:
            step, count = self.spacing / axis.pixel, axis.lines.shape[1]
            phases = []
            for offset in np.arange(OFFSETS) * step / OFFSETS:
                positions = thick_slice_positions(count, step, offset)
                phases.append((positions, _segment_index(axis.sampled_masks(positions), self.length)))
            axis.cache = {"planes_acz": np.ascontiguousarray(axis.planes.transpose(1, 2, 0)),
                          "slice_index": _segment_index(axis.slice_masks, self.length),
                          "lines64": axis.lines.astype(np.float64), "phases": phases}
        return axis.cache

    def misfit(self, family: str, fwhm_mm: float) -> list[float]:
        """Mean squared log-ratio of the two spectra, per in-plane axis."""
        result = []
        for axis in self.axes:
            fixed = self._candidate_independent(axis)
            voxels = fwhm_mm / axis.pixel
            radius = max(profile_radius(voxels, family), 1)
            kernel = profile_weights(2 * radius + 1, np.array([float(radius)]), voxels, family)[0]
            blurred = ndimage.convolve1d(fixed["planes_acz"], kernel.astype(np.float32), axis=0, mode="nearest")
            slice_lines = blurred.reshape(axis.slice_lines.shape)
            slice_side = (self._power(_gather(slice_lines, fixed["slice_index"], self.length))
                          - np.sum(kernel ** 2) * axis.white_noise)
            count = axis.lines.shape[1]
            simulated = np.zeros_like(slice_side)
            for positions, index in fixed["phases"]:
                if index[0].size == 0:
                    continue
                weights = profile_weights(count, positions, voxels, family)
                segments = _gather(fixed["lines64"] @ weights.T, index, self.length)
                simulated += (self._power(segments) - self._noise_power(weights @ weights.T, index[1])) / OFFSETS
            floor = 1e-6 * max(float(slice_side.max()), 1e-12)
            ratio = np.log(np.maximum(simulated, floor) / np.maximum(slice_side, floor))
            result.append(float(np.sum(self.bin_weights * ratio ** 2) / np.sum(self.bin_weights)))
        return result

    def best_width(self, family: str) -> tuple[float, float, list[float], tuple[float, float]]:
        """(FWHM mm, misfit, best FWHM per in-plane axis, (lowest, highest) FWHM as good within PLATEAU)
        over a coarse then a fine grid."""
        low, high = SEARCH_RANGE
        coarse = np.geomspace(low * self.spacing, high * self.spacing, COARSE_STEPS)
        scores = {float(w): self.misfit(family, float(w)) for w in coarse}
        best = int(np.argmin([np.mean(scores[float(w)]) for w in coarse]))
        fine = np.geomspace(coarse[max(best - 1, 0)], coarse[min(best + 1, COARSE_STEPS - 1)], FINE_STEPS)
        scores.update({float(w): self.misfit(family, float(w)) for w in fine if float(w) not in scores})
        widths = np.array(sorted(scores))
        table = np.array([scores[w] for w in widths])  # [candidates, axes]
        overall = table.mean(axis=1)
        chosen = int(np.argmin(overall))
        good = widths[overall <= PLATEAU * overall[chosen]]
        return (float(widths[chosen]), float(overall[chosen]), [float(widths[i]) for i in table.argmin(axis=0)],
                (float(good.min()), float(good.max())))


def family_at_width(array: np.ndarray, spacing: tuple[float, float, float], fwhm_mm: float,
                    seed: int = 0) -> tuple[str, float]:
    """(family, margin) for a known FWHM (from a header or dataset.json): at a fixed width the two families
    pass different bands, so this choice is far better determined than the family of a free estimate."""
    match = _SpectralMatch(array, spacing, seed)
    misfit = {family: float(np.mean(match.misfit(family, fwhm_mm))) for family in ACQUISITION_PROFILES}
    family = "rect" if misfit["gaussian"] > FAMILY_MARGIN * misfit["rect"] else "gaussian"
    other = "gaussian" if family == "rect" else "rect"
    return family, misfit[other] / max(misfit[family], 1e-12)


def inplane_axis_misfits(array: np.ndarray, spacing: tuple[float, float, float], family: str, fwhm_mm: float,
                         seed: int = 0) -> tuple[float, float]:
    """How unlike the slice axis each in-plane axis (1, 2) of a slices-first array looks once blurred with the
    profile (`family`, `fwhm_mm`) and sampled at the slice spacing: the estimator's spectral misfit at that profile,
    per axis (0 = the same spectrum). The axis with the lower misfit resembles the slice axis more: its pairs teach
    ssft inputs like the real slices (training/samplers/ssft.py). Raises IsrnetError where the estimate would."""
    match = _SpectralMatch(array, spacing, seed)
    first, second = match.misfit(family, float(fwhm_mm))
    return first, second


def gaussian_equivalent(family: str, fwhm_mm: float, spacing_mm: float) -> float:
    """FWHM (mm) of the Gaussian profile whose transfer function is closest (least squares) to that of `family` at
    `fwhm_mm`, over the frequencies the slices can carry (0 up to the slice Nyquist, 1 / (2 spacing)): what an
    estimate that reports a Gaussian should say for a box-like profile (rect, rf, trapezoid)."""
    if family == "gaussian":
        return float(fwhm_mm)
    step = fwhm_mm / EQUIVALENCE_SAMPLES
    radius = profile_radius(float(EQUIVALENCE_SAMPLES), family) + 1
    weights = profile_weights(2 * radius + 1, np.array([float(radius)]), float(EQUIVALENCE_SAMPLES), family)[0]
    distance = (np.arange(2 * radius + 1) - radius) * step
    frequency = np.linspace(0.0, 0.5 / spacing_mm, EQUIVALENCE_SAMPLES + 1)
    transfer = np.cos(2 * np.pi * frequency[:, None] * distance[None, :]) @ weights

    def misfit(width: float) -> float:
        return float(np.sum((transfer - np.exp(-2.0 * (np.pi * width * FWHM_TO_SIGMA * frequency) ** 2)) ** 2))

    return float(minimize_scalar(misfit, bounds=(0.05 * fwhm_mm, 3.0 * fwhm_mm), method="bounded").x)
