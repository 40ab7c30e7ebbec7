"""Random MR acquisitions for mrft's pairs (`sampler.acquisition_physics`: the chance per sample), drawn from the
clinical ranges of `acquisition.mr_physics.PhysicsRanges`.

In the order of a real acquisition: the fine block gets a smooth bias field and the in-plane resolution of a
truncated (maybe partial-Fourier) k-space, the same for context and targets, since both are what the scanner shows
in-plane; the slice profile is an RF pulse's half the time; then the *acquired* thick slices, not the fine block,
get an interleave intensity step and complex noise (magnitude after), so the profile cannot average the noise
away. The targets stay noise-free: the best estimate of a noisy truth.
"""
from __future__ import annotations

import numpy as np

from isrnet.acquisition.mr_physics import PhysicsRanges, complex_noise, interleave_step, truncate_kspace
from isrnet.training.samplers.contrast import bias_field

RANGES = PhysicsRanges()


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def draw_profile(profile: str, rng: np.random.Generator, ranges: PhysicsRanges = RANGES) -> tuple[str, float]:
    """(family, time-bandwidth product): an RF pulse's profile with `ranges.rf_chance` unless the slices are thin."""
    time_bandwidth = _uniform(rng, ranges.time_bandwidth)
    if profile != "none" and rng.random() < ranges.rf_chance:
        return "rf", time_bandwidth
    return profile, time_bandwidth


def acquire_in_plane(block: np.ndarray, rng: np.random.Generator, ranges: PhysicsRanges = RANGES) -> np.ndarray:
    """The fine block [A, H, W] (axis 0 plays the slice axis) with a bias field and a truncated k-space in-plane."""
    if rng.random() < ranges.bias_chance:
        block = block * bias_field(block.shape, rng, _uniform(rng, ranges.bias_strength))
    resolution = (_uniform(rng, ranges.resolution), _uniform(rng, ranges.resolution))
    taper = _uniform(rng, ranges.taper)
    partial = _uniform(rng, ranges.partial_fourier) if rng.random() < ranges.partial_fourier_chance else 1.0
    axes = (1, 2) if rng.random() < 0.5 else (2, 1)  # the phase-encode axis (partial Fourier) is the first
    return truncate_kspace(block, axes, resolution, taper, partial)


def acquire_slices(context: np.ndarray, rng: np.random.Generator, ranges: PhysicsRanges = RANGES) -> np.ndarray:
    """The simulated thick slices [K, H, W] as acquired: maybe an interleave step, then complex noise."""
    if rng.random() < ranges.interleave_chance:
        context = interleave_step(context, _uniform(rng, ranges.interleave_step) * rng.choice([-1.0, 1.0]),
                                  bool(rng.random() < 0.5))
    return complex_noise(context, _uniform(rng, ranges.noise_sigma), rng)
