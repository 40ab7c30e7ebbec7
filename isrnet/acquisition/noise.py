"""The acquisition's noise: its level read off a volume's background, and simulated slices topped up to it.

A real thick slice carries the scanner's noise at full strength (sigma per voxel). A thick slice *simulated*
from fine in-plane lines averages their noise over the profile, which leaves sigma * sqrt(sum of the squared
profile weights): about 0.4 sigma for a 4-voxel Gaussian. Pairs built that way teach a network inputs far
cleaner than the ones it is applied to, and the validation pairs built the same way cannot see the mismatch
(what it cost on a noisy acquisition: documentation/training.md). So ssft adds
the missing variance, sigma^2 * (1 - sum w^2), as white Gaussian noise to the simulated slices
(training/samplers/ssft.py, plans key sampler.noise_matching).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from isrnet.acquisition.simulation import profile_radius, profile_weights
from isrnet.intensity import foreground_mask

MIN_BACKGROUND_VOXELS = 1000


def background_noise_sigma(array: np.ndarray, mask: np.ndarray) -> float:
    """Noise sigma from the background of a magnitude image (Rayleigh: median = sigma * sqrt(2 ln 2)).

    0 where there is no real background (masked or zero-filled volumes)."""
    solid = ndimage.binary_dilation(ndimage.binary_opening(mask, iterations=1), iterations=3)
    background = array[~solid]
    if background.size < MIN_BACKGROUND_VOXELS or np.mean(background <= array.min()) > 0.5:
        return 0.0
    return float(np.median(background - array.min()) / np.sqrt(2.0 * np.log(2.0)))


def volume_noise_sigma(array: np.ndarray) -> float:
    """The noise sigma of a whole (uncropped) volume, in its own units; 0 when it has no noisy background."""
    array = np.asarray(array, dtype=np.float32)
    return background_noise_sigma(array, foreground_mask(array))


def kept_noise_variance(thickness_voxels: float, profile: str) -> float:
    """The share of white noise's variance a simulated slice of this profile keeps (sum of squared weights)."""
    radius = profile_radius(thickness_voxels, profile)
    weights = profile_weights(2 * radius + 3, np.array([radius + 1.0]), thickness_voxels, profile)
    return float(np.sum(weights ** 2))


def top_up_noise(images: np.ndarray, sigma: float, kept: float, rng: np.random.Generator) -> np.ndarray:
    """`images` (simulated slices that kept `kept` of the noise variance) with white noise added so that their
    noise is about `sigma`; unchanged, and no random numbers drawn, when there is nothing to add."""
    missing = sigma * np.sqrt(max(0.0, 1.0 - kept))
    if missing <= 0.0:
        return images
    return (images + rng.normal(0.0, missing, images.shape)).astype(np.float32)
