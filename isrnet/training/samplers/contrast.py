"""Random MR contrasts for pre-training on T1 material (domain randomisation, the idea of SynthSR/SynthSeg).

The high-resolution block is remapped *before* its thick slices are simulated, so context and targets share
the new contrast, as in a real acquisition. `random_contrast` applies, each with its own chance:
- an intensity curve: piecewise linear through 2-5 random control points over the normalised range, monotone
  (rising or falling, 40 %) or not, so tissues of a T1 (CSF < grey < white matter) may come out in any order and spacing; the background
  mostly stays dark (it is dark in nearly every MR contrast);
- a smooth multiplicative bias field (coil sensitivity);
- Rician noise at a random level (magnitude images);
otherwise the mild gamma/contrast jitter that mrft always used. Values stay within [0, 2) and mostly [0, 1.2],
the range the network sees after `prepare_volume`'s normalisation.
"""
from __future__ import annotations

import numpy as np

BACKGROUND_DARK_CHANCE = 0.85  # the curve starts at 0 (dark background) this often
MONOTONE_CHANCE = 0.4  # the curve's tissue part is sorted, rising or falling with equal chance, this often
BIAS_CHANCE, BIAS_STRENGTH = 0.5, 0.3  # log-amplitude of the smooth field, up to
NOISE_CHANCE, NOISE_SIGMA = 0.3, (0.005, 0.04)  # Rician sigma as a fraction of the range


def gamma_jitter(block: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random gamma on the positive part and a random contrast scale (MR contrasts vary)."""
    gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.5))))
    scale = float(rng.uniform(0.8, 1.2))
    return (np.clip(block, 0, None) ** gamma * scale).astype(np.float32)


def intensity_curve(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) control points of a random curve on [0, 1] (x ascending; y in any order)."""
    inner = np.sort(rng.uniform(0.05, 0.95, int(rng.integers(1, 4))))
    x = np.concatenate([[0.0], inner, [1.0]])
    y = rng.uniform(0.1, 1.0, x.size)
    if rng.random() < MONOTONE_CHANCE:  # real contrasts mostly keep or reverse an ordering (T1 vs T2-weighted)
        y[1:] = np.sort(y[1:])[::1 if rng.random() < 0.5 else -1]
    if rng.random() < BACKGROUND_DARK_CHANCE:
        y[0] = 0.0
    return x, y / y.max()


def _interpolation_weights(length: int, nodes: int) -> np.ndarray:
    """[length, nodes] linear-interpolation weights from `nodes` evenly spread control points."""
    position = np.linspace(0.0, nodes - 1.0, length)
    lower = np.minimum(np.floor(position).astype(int), nodes - 2)
    weights = np.zeros((length, nodes), np.float32)
    weights[np.arange(length), lower] = 1.0 - (position - lower)
    weights[np.arange(length), lower + 1] = position - lower
    return weights


def bias_field(shape: tuple[int, ...], rng: np.random.Generator, strength: float) -> np.ndarray:
    """exp of a smooth random field (a 3x3x3 grid of normal values, trilinearly spread over `shape`), mean 1,
    within [0.5, 1.5]. Separable weights: about 10 ms for a 40 x 96 x 96 block (scipy's zoom took 1.7 s)."""
    coarse = rng.normal(0.0, 1.0, (3, 3, 3)).astype(np.float32)
    w0, w1, w2 = (_interpolation_weights(n, 3) for n in shape)
    field = np.exp(strength * np.einsum("abc,ia,jb,kc->ijk", coarse, w0, w1, w2, optimize=True))
    return np.clip(field / field.mean(), 0.5, 1.5).astype(np.float32)


def same_curve(arrays: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One random `intensity_curve` applied to every array alike (a pair's context and targets)."""
    x, y = intensity_curve(rng)
    return tuple(np.interp(np.clip(array, 0.0, 1.0), x, y).astype(np.float32) for array in arrays)


def random_contrast(block: np.ndarray, rng: np.random.Generator, chance: float, noise: bool = True) -> np.ndarray:
    """With probability `chance` a random contrast (curve, then maybe bias and noise), else gamma jitter.
    `chance` 0 draws exactly what mrft drew before contrast randomisation existed (same seed, same batches).
    `noise` False leaves the noise to the acquired slices (acquisition physics) instead of the fine block."""
    if chance <= 0 or rng.random() >= chance:
        return gamma_jitter(block, rng)
    mapped, = same_curve((block,), rng)
    if rng.random() < BIAS_CHANCE:
        mapped *= bias_field(block.shape, rng, float(rng.uniform(0.0, BIAS_STRENGTH)))
    if noise and rng.random() < NOISE_CHANCE:
        sigma = float(rng.uniform(*NOISE_SIGMA))
        real = rng.standard_normal(block.shape, dtype=np.float32) * sigma
        mapped = np.hypot(mapped + real, rng.standard_normal(block.shape, dtype=np.float32) * sigma)
    return (mapped * rng.uniform(0.8, 1.2)).astype(np.float32)
