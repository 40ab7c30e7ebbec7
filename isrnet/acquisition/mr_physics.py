"""What a real MR acquisition does to an image beyond averaging over the slice: the in-plane resolution of a
truncated k-space, partial Fourier, complex noise on the acquired slices, interleave intensity steps, and the
slice profile of a windowed-sinc RF pulse.

- In-plane resolution is k-space truncation: the scanner acquires the centre of k-space only, and the image is
  reconstructed on a finer (zero-filled) matrix, so its point spread is sinc-like and edges ring (Gibbs).
  `truncate_kspace` keeps `resolution` of the extent along each in-plane axis (optionally tapered by a Tukey
  window) and returns the magnitude on the block's own grid.
- Partial Fourier acquires only `partial_fourier` (5/8 to 7/8) of the phase-encode lines, one side of k-space
  incomplete: extra blur along that axis after a zero-filled reconstruction.
- Noise is complex Gaussian on the real and imaginary parts of the *acquired* slice; the magnitude is Rician,
  with a positive bias where there is no signal (`complex_noise`). Added to simulated thick slices, it is not
  averaged away by the slice profile, as it is not in a real thick slice.
- Interleaved acquisitions (odd slices, then even) leave a small intensity step between the two halves
  (`interleave_step`).
- The slice profile of a windowed-sinc RF pulse (time-bandwidth product 2 to 8) is, in the small-tip
  approximation, the Fourier transform of its envelope: close to a box of the nominal thickness with soft edges
  and small side lobes (`rf_profile`, the family 'rf' of `simulation.profile_weights`).

Clinical ranges of every parameter: `PhysicsRanges` (from the MR physics notes in documentation/training.md).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal.windows import tukey

RF_TIME_BANDWIDTH = 4.0  # the time-bandwidth product of the 'rf' family when none is given
RF_REACH = 1.5  # the profile is evaluated to this many FWHM from the slice centre (side lobes beyond are < 1 %)
_PULSE_SAMPLES, _SPECTRUM_SAMPLES = 256, 8192


@dataclass(frozen=True)
class PhysicsRanges:
    """The clinical ranges mrft draws its simulated acquisitions from (see documentation/training.md)."""
    resolution: tuple[float, float] = (0.5, 1.0)  # acquired share of the in-plane k-space extent, per axis
    taper: tuple[float, float] = (0.0, 0.5)  # Tukey taper of the kept k-space (0: hard truncation)
    partial_fourier_chance: float = 0.5
    partial_fourier: tuple[float, float] = (0.625, 0.875)  # share of the phase-encode lines acquired
    time_bandwidth: tuple[float, float] = (2.0, 8.0)  # of the RF pulse when the family is 'rf'
    rf_chance: float = 0.5  # the slice profile is an RF pulse's this often, else the sampler's own families
    noise_sigma: tuple[float, float] = (0.008, 0.035)  # per real/imaginary part, of the normalised range (SNR 15-60)
    interleave_chance: float = 0.5
    interleave_step: tuple[float, float] = (0.0, 0.04)  # relative intensity step between the two halves
    bias_chance: float = 0.5
    bias_strength: tuple[float, float] = (0.05, 0.3)  # log-amplitude of the smooth multiplicative field


def _tukey(length: int, taper: float) -> np.ndarray:
    """A Tukey window of `length` points whose cosine flanks take `taper` of it (0, or under 3 points: a box)."""
    if taper <= 0.0 or length < 3:
        return np.ones(length)
    return tukey(length, taper)


def _kspace_mask(length: int, resolution: float, taper: float, partial_fourier: float = 1.0) -> np.ndarray:
    """The acquired (and tapered) part of k-space along one axis, in FFT order."""
    frequency = np.fft.fftfreq(length)  # cycles per voxel, |f| <= 0.5
    limit = 0.5 * float(resolution)
    low = -limit + 2.0 * limit * (1.0 - float(partial_fourier))  # partial Fourier: the lower lines are not acquired
    inside = (frequency >= low - 1e-12) & (np.abs(frequency) <= limit + 1e-12)
    mask = np.zeros(length)
    order = np.argsort(frequency[inside])
    kept = np.flatnonzero(inside)[order]
    mask[kept] = _tukey(kept.size, taper) if partial_fourier >= 1.0 else 1.0
    return mask


def truncate_kspace(block: np.ndarray, axes: tuple[int, ...] = (1, 2), resolution: tuple[float, ...] = (0.7, 0.7),
                    taper: float = 0.0, partial_fourier: float = 1.0) -> np.ndarray:
    """The magnitude image an acquisition of a coarser matrix reconstructs on the block's grid: k-space beyond
    `resolution` of the extent along each of `axes` removed (Tukey-tapered by `taper`), with `partial_fourier` of
    the lines acquired along the first of `axes`, zero-filled back (float32). The block is mirrored by a quarter
    of its extent first, so its borders (a patch of a larger image) do not ring as if the image wrapped around."""
    margins = [(block.shape[a] // 4, block.shape[a] // 4) if a in axes else (0, 0) for a in range(block.ndim)]
    padded = np.pad(np.asarray(block, dtype=np.float32), margins, mode="symmetric")
    spectrum = np.fft.fftn(padded, axes=axes)
    for index, (axis, share) in enumerate(zip(axes, resolution)):
        mask = _kspace_mask(padded.shape[axis], share, taper, partial_fourier if index == 0 else 1.0)
        shape = [1] * block.ndim
        shape[axis] = padded.shape[axis]
        spectrum *= mask.reshape(shape)
    image = np.abs(np.fft.ifftn(spectrum, axes=axes))
    inside = tuple(slice(low, low + size) for (low, _), size in zip(margins, block.shape))
    return image[inside].astype(np.float32)


def complex_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The magnitude of `images` with complex Gaussian noise of `sigma` per part (Rician; float32)."""
    if sigma <= 0.0:
        return np.asarray(images, dtype=np.float32)
    real = images + rng.normal(0.0, sigma, images.shape)
    imaginary = rng.normal(0.0, sigma, images.shape)
    return np.hypot(real, imaginary).astype(np.float32)


def interleave_step(slices: np.ndarray, step: float, first_half_even: bool = True) -> np.ndarray:
    """Slices [K, ...] of an interleaved acquisition: every other slice scaled by 1 + `step`."""
    scaled = np.array(slices, dtype=np.float32, copy=True)
    scaled[(0 if first_half_even else 1)::2] *= 1.0 + float(step)
    return scaled


@functools.lru_cache(maxsize=64)
def _rf_template(time_bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """(distance in FWHM units, profile with peak 1) of a Hamming-windowed sinc pulse of `time_bandwidth`."""
    t = (np.arange(_PULSE_SAMPLES) - _PULSE_SAMPLES // 2) / _PULSE_SAMPLES  # centred on 0: a real spectrum
    pulse = np.sinc(time_bandwidth * t) * (0.54 + 0.46 * np.cos(2 * np.pi * t))  # Hamming-windowed sinc
    padded = np.zeros(_SPECTRUM_SAMPLES)
    padded[np.arange(_PULSE_SAMPLES) - _PULSE_SAMPLES // 2] = pulse  # time 0 at index 0, negative times wrapped
    spectrum = np.real(np.fft.fftshift(np.fft.fft(padded)))
    spectrum *= np.sign(spectrum[_SPECTRUM_SAMPLES // 2])
    spectrum /= spectrum.max()
    frequency = np.fft.fftshift(np.fft.fftfreq(_SPECTRUM_SAMPLES))
    centre = _SPECTRUM_SAMPLES // 2
    above = np.flatnonzero(spectrum[centre:] < 0.5)[0] + centre  # first sample below half maximum
    x0, x1, y0, y1 = frequency[above - 1], frequency[above], spectrum[above - 1], spectrum[above]
    half_width = x0 + (0.5 - y0) * (x1 - x0) / (y1 - y0)
    return frequency / (2.0 * half_width), spectrum


def rf_profile(distance: np.ndarray, thickness_voxels: float, time_bandwidth: float = RF_TIME_BANDWIDTH) -> np.ndarray:
    """The slice profile of a windowed-sinc RF pulse at `distance` (voxels) from the slice centre, FWHM
    `thickness_voxels`, peak 1 (side lobes may be slightly negative), 0 beyond RF_REACH FWHM."""
    units, profile = _rf_template(round(float(time_bandwidth), 3))
    scaled = np.asarray(distance, dtype=np.float64) / float(thickness_voxels)
    values = np.interp(scaled, units, profile)
    return np.where(np.abs(scaled) <= RF_REACH, values, 0.0)
