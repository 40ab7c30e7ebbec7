"""Stage 2, `mrft`: pairs from isotropic high-resolution MR with simulated thick slices.

A random axis plays the slice axis; a random factor and thickness/spacing ratio (0 = plain decimation)
and profile are drawn per sample; the one simulation in acquisition/simulation.py makes the thick slices, and the
true slices between them are the targets. Intensity augmentation: random gamma and contrast, and with
`contrast_randomisation` > 0 (the chance per sample) random MR contrasts, bias fields and noise (contrast.py),
so T1 material teaches weights that work on any contrast. With `acquisition_physics` > 0 (the chance per sample)
the pair is acquired as a scanner would (acquisition_physics.py): truncated k-space in-plane, an RF pulse's slice
profile, complex noise and interleave steps on the acquired thick slices. With `tissue_contrast` > 0 (the chance
per sample) the block's contrast is synthesised from its tissue classes instead (tissue_contrast.py). With
`curve_after_acquisition` > 0 (the chance per sample) a random intensity curve is applied to the acquired pair,
context and targets alike: the weights learn to follow a remapping of the scan they are given (a contrast change
made after the partial-volume averaging of thick slices, where the others are made before it).
"""
from __future__ import annotations

import numpy as np

from isrnet.intensity import mostly_foreground
from isrnet.training.samplers.acquisition_physics import acquire_in_plane, acquire_slices, draw_profile
from isrnet.training.samplers.contrast import random_contrast, same_curve
from isrnet.training.samplers.tissue_contrast import synthesise_contrast, tissue_centres
from isrnet.training.samplers.base import (Batch, augment, block_length, cut_pair, pad_to,
                                           random_window, split_window, stack_samples)

FOREGROUND_TRIES = 5  # redraw a patch that is mostly background up to this many times


class MrftSampler:
    def __init__(self, cases: list[tuple[np.ndarray, dict]], context: int = 4, targets_per_sample: int = 3,
                 factor_range: tuple[float, float] = (2.0, 8.0), thickness_ratio_range: tuple[float, float] = (0.0, 1.5),
                 profiles: tuple[str, ...] = ("gaussian", "rect"), intensity_augmentation: bool = True,
                 contrast_randomisation: float = 0.0, acquisition_physics: float = 0.0, tissue_contrast: float = 0.0,
                 curve_after_acquisition: float = 0.0,
                 split: str = "train", validation_fraction: float = 0.1, axes: tuple[int, ...] = (0, 1, 2)) -> None:
        self.cases, self.context, self.targets = cases, context, targets_per_sample
        self.factor_range, self.ratio_range = tuple(factor_range), tuple(thickness_ratio_range)
        self.profiles, self.intensity_augmentation = tuple(profiles), intensity_augmentation
        self.contrast_chance, self.physics_chance = float(contrast_randomisation), float(acquisition_physics)
        self.tissue_chance, self.curve_after_chance = float(tissue_contrast), float(curve_after_acquisition)
        self.centres = [tissue_centres(array) for array, _ in cases] if self.tissue_chance > 0 else []
        self.split, self.fraction, self.axes = split, validation_fraction, tuple(axes)
        sizes = np.array([a.size for a, _ in cases], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def sample(self, rng: np.random.Generator, batch_size: int, patch: int) -> Batch:
        return stack_samples([self._one(rng, patch) for _ in range(batch_size)])

    def _one(self, rng: np.random.Generator, patch: int):
        index = int(rng.choice(len(self.cases), p=self.weights))
        array = self.cases[index][0]
        axis = self.axes[int(rng.integers(len(self.axes)))]
        factor = float(np.exp(rng.uniform(*np.log(self.factor_range))))
        ratio = float(rng.uniform(*self.ratio_range))
        profile = "none" if ratio < 0.05 else str(rng.choice(self.profiles))
        physics = self.physics_chance > 0 and rng.random() < self.physics_chance  # 0: no draw, the batches of before
        if physics:
            profile, time_bandwidth = draw_profile(profile, rng)
        moved = np.moveaxis(array, axis, 0)
        length = block_length(factor, ratio * factor, profile, self.context)
        for _ in range(FOREGROUND_TRIES):  # held-out central rows for validation
            block = moved[random_window(moved.shape[0], length, rng),
                          split_window(moved.shape[1], patch, rng, self.fraction, self.split),
                          random_window(moved.shape[2], patch, rng)]
            if mostly_foreground(block):
                break
        block = pad_to(np.asarray(block, dtype=np.float32), (length, patch, patch))
        if self.tissue_chance > 0 and rng.random() < self.tissue_chance:  # 0: no draw, the batches of before
            block = synthesise_contrast(block, self.centres[index], rng)
        elif self.intensity_augmentation:
            block = random_contrast(block, rng, self.contrast_chance, noise=not physics)
        if physics:
            block = acquire_in_plane(block, rng)
            context, positions, truth = cut_pair(block, factor, ratio * factor, profile, self.context, self.targets,
                                                 rng, time_bandwidth)
            context = acquire_slices(context, rng)
        else:
            context, positions, truth = cut_pair(block, factor, ratio * factor, profile, self.context, self.targets,
                                                 rng)
        if self.curve_after_chance > 0 and rng.random() < self.curve_after_chance:  # 0: no draw, as before
            context, truth = same_curve((context, truth), rng)
        context, positions, truth = augment(context, positions, truth, rng)
        return context, positions, truth, factor, ratio

