"""What every stage's sampler yields, and the one pair-cutting routine they all share.

A stage differs from another only in where its blocks come from (video frames, isotropic MR, the
target's own volumes); `cut_pair` turns a block [A, H, W] whose axis 0 plays the slice axis into
context slices, positions and target slices, using the one slice-profile simulation in acquisition/simulation.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from isrnet.acquisition import profile_radius, sample_thick
from isrnet.acquisition.mr_physics import RF_TIME_BANDWIDTH
from isrnet.networks.slice_synth import conditioning_vector


@dataclass
class Batch:
    context: np.ndarray  # [B, K, P, P] low-resolution slices
    positions: np.ndarray  # [B, M] in [0, 1] between context slices K/2-1 and K/2
    targets: np.ndarray  # [B, M, P, P] true slices at those positions
    conditioning: np.ndarray  # [B, 2] (see networks.slice_synth.conditioning_vector)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"context": self.context, "positions": self.positions, "targets": self.targets,
                "conditioning": self.conditioning}


class PairSampler(Protocol):
    """What the trainer asks of a stage: a batch of pairs, a pure function of the random generator."""
    def sample(self, rng: np.random.Generator, batch_size: int, patch: int) -> Batch: ...


def block_length(step: float, thickness_voxels: float, profile: str, context: int) -> int:
    """Fine slices a block needs along axis 0 for `context` low-resolution slices at `step`."""
    radius = profile_radius(thickness_voxels, profile)
    return int(np.ceil((context - 1) * step + 1)) + 2 * radius + 1


def cut_pair(block: np.ndarray, step: float, thickness_voxels: float, profile: str, context: int, targets: int,
             rng: np.random.Generator, time_bandwidth: float = RF_TIME_BANDWIDTH
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate `context` thick slices along axis 0 of `block` and pick `targets` true slices in the central gap
    (`time_bandwidth`: of the RF pulse, for the profile 'rf').

    Returns (context [K, H, W], positions [M], targets [M, H, W]); a target at position t really lies at
    fine coordinate lr[K/2-1] + t * step.
    """
    radius = profile_radius(thickness_voxels, profile)
    room = block.shape[0] - 1 - 2 * radius - (context - 1) * step
    offset = radius + (rng.uniform(0, min(room, 1.0)) if room > 0 else 0.0)
    lr_positions = offset + step * np.arange(context)
    lr = sample_thick(block, 0, lr_positions, thickness_voxels, profile, time_bandwidth)
    left = lr_positions[context // 2 - 1]
    candidates = np.arange(np.floor(left) + 1, left + step - 1e-6)
    candidates = candidates[candidates > left + 1e-6]
    if candidates.size == 0:
        candidates = np.array([left + step / 2])
    chosen = rng.choice(candidates, size=targets, replace=candidates.size < targets)
    truth = sample_thick(block, 0, chosen, 0.0, "none")
    return lr.astype(np.float32), ((chosen - left) / step).astype(np.float32), truth.astype(np.float32)


def random_window(length: int, size: int, rng: np.random.Generator, low: int = 0, high: int | None = None) -> slice:
    """A window of `size` inside [low, high) (all of it when it is shorter)."""
    high = length if high is None else high
    if high - low <= size:
        return slice(low, high)
    start = int(rng.integers(low, high - size + 1))
    return slice(start, start + size)


def pad_to(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reflect-pad trailing axes up to `shape` (for volumes smaller than a patch)."""
    pads = [(0, max(0, s - a)) for a, s in zip(array.shape, shape)]
    if not any(p[1] for p in pads):
        return array
    mode = "reflect" if all(a > 1 for a, p in zip(array.shape, pads) if p[1]) else "edge"
    out = array
    while any(o < s for o, s in zip(out.shape, shape)):  # reflect can only add less than the axis length
        pads = [(0, min(max(0, s - o), o - 1 if mode == "reflect" else s)) for o, s in zip(out.shape, shape)]
        out = np.pad(out, pads, mode=mode)
    return out


def augment(context: np.ndarray, positions: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
            transpose: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-plane flips and transpose, and reversal of slice order (t -> 1 - t)."""
    for axis in (1, 2):
        if rng.random() < 0.5:
            context, truth = np.flip(context, axis), np.flip(truth, axis)
    if transpose and rng.random() < 0.5:
        context, truth = context.transpose(0, 2, 1), truth.transpose(0, 2, 1)
    if rng.random() < 0.5:
        context, positions = context[::-1], 1.0 - positions
    return np.ascontiguousarray(context), positions.astype(np.float32), np.ascontiguousarray(truth)


def stack_samples(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, float]]) -> Batch:
    """[(context, positions, targets, factor, thickness_ratio), ...] -> Batch."""
    return Batch(np.stack([s[0] for s in samples]).astype(np.float32),
                 np.stack([s[1] for s in samples]).astype(np.float32),
                 np.stack([s[2] for s in samples]).astype(np.float32),
                 np.array([conditioning_vector(s[3], s[4]) for s in samples], dtype=np.float32))


def split_window(length: int, size: int, rng: np.random.Generator, fraction: float, split: str) -> slice:
    """A random window of `size` along an axis, inside ('val') or clear of ('train') a held-out central band.

    The band is the middle `fraction` of the axis (at least `size` wide): in MR volumes and video frames the
    middle holds anatomy or content, where the edges are often background.
    """
    if length <= size:
        return slice(0, length)
    width = min(length, max(int(round(fraction * length)), size))
    band = ((length - width) // 2, (length - width) // 2 + width)
    if split == "val":
        return random_window(length, size, rng, *band)
    starts = np.concatenate([np.arange(0, max(band[0] - size + 1, 0)), np.arange(band[1], length - size + 1)])
    if starts.size == 0:  # too small to hold anything out
        return random_window(length, size, rng)
    start = int(rng.choice(starts))
    return slice(start, start + size)
