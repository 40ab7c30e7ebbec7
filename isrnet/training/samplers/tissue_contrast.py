"""Contrasts synthesised from tissue classes (the idea of SynthSeg / SynthSR) for mrft's pairs
(`sampler.tissue_contrast`: the chance per sample).

Each high-resolution volume is split once into tissue classes by its own intensities (1-D k-means of the
foreground into `TISSUE_CLASSES` classes; on a T1: CSF, grey and white matter); a block's voxels belong to the
classes softly (partial volume: a Gaussian membership around each class centre). A synthetic contrast draws a new
intensity per class (the background mostly dark), mixes them by membership, and keeps the real image's texture
within each tissue (the residual from the class means), scaled with the new contrast. The classes come out in
any order, as T2, PD or FLAIR order them differently from T1; no two samples share a contrast.
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2

from isrnet.intensity import foreground_mask

TISSUE_CLASSES = 3
KMEANS_ITERATIONS = 20
BACKGROUND_DARK_CHANCE = 0.9  # the background class gets intensity 0 this often
TEXTURE_GAIN = (0.5, 1.5)  # the real texture's amplitude, relative to the new contrast's spread


def tissue_centres(volume: np.ndarray, classes: int = TISSUE_CLASSES, seed: int = 0) -> np.ndarray:
    """Sorted class centres of the volume's foreground intensities (1-D k-means), with 0 (background) first."""
    values = np.asarray(volume, dtype=np.float32)[foreground_mask(volume)]
    if values.size == 0:
        return np.linspace(0.0, 1.0, classes + 1)
    rng = np.random.default_rng(seed)
    sample = rng.choice(values, min(values.size, 200_000), replace=False)
    low, high = np.quantile(sample, [0.01, 0.99])
    centres = low + (high - low) * (np.arange(classes) + 0.5) / classes  # spread evenly: robust to class sizes
    centres, _ = kmeans2(sample.astype(np.float64), centres.astype(np.float64), iter=KMEANS_ITERATIONS, minit="matrix",
                         missing="warn")
    return np.concatenate([[0.0], np.sort(centres)]).astype(np.float32)


def memberships(block: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[C, ...] soft class memberships of every voxel (summing to 1): Gaussians around the centres, each as wide as
    half the distance to its nearest neighbour."""
    gaps = np.diff(centres)
    widths = 0.5 * np.minimum(np.concatenate([[gaps[0]], gaps]), np.concatenate([gaps, [gaps[-1]]]))
    widths = np.maximum(widths, 1e-3)
    distance = (np.asarray(block, np.float32)[None] - centres.reshape(-1, *[1] * block.ndim))
    weights = np.exp(-0.5 * (distance / widths.reshape(-1, *[1] * block.ndim)) ** 2)
    weights[-1] = np.where(block > centres[-1], 1.0, weights[-1])  # brighter than every centre: the last class
    return weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-12)


def synthesise_contrast(block: np.ndarray, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The block in a random contrast: a new intensity per tissue class, mixed by membership, with the real
    texture within each tissue scaled to the new contrast (float32, about [0, 1])."""
    weights = memberships(block, centres)
    shape = (-1, *[1] * block.ndim)
    means = np.sum(weights * centres.reshape(shape), axis=0)
    texture = np.asarray(block, np.float32) - means
    intensities = rng.uniform(0.05, 1.0, centres.size)
    if rng.random() < BACKGROUND_DARK_CHANCE:
        intensities[0] = 0.0
    intensities /= intensities.max()
    spread = np.ptp(intensities[1:]) / max(float(np.ptp(centres[1:])), 1e-6) if centres.size > 2 else 1.0
    image = np.sum(weights * intensities.reshape(shape), axis=0) + rng.uniform(*TEXTURE_GAIN) * spread * texture
    return np.clip(image, 0.0, None).astype(np.float32)
