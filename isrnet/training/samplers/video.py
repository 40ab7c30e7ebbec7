"""Stage 1, `video`: frame interpolation as pre-training (time between frames ~ distance between slices).

As in the paper: a sub-sequence is taken, one frame of every n is kept (n drawn from `frame_step_range`)
and the frames between the central pair are the targets. Frames are instants, so there is no slice
profile (thickness ratio 0). Clips never mix: a sample lies inside one clip (converters split videos at
scene cuts), and clips too short for the drawn n are skipped; random crops, flips, transposes and time
reversal augment. With `uneven_steps`, frames are dropped unevenly: the kept frames' spacing jitters by
up to one frame around n, as slices of real stacks are not perfectly regular either.
"""
from __future__ import annotations

import sys

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.training.samplers.base import Batch, augment, pad_to, random_window, split_window, stack_samples


class VideoSampler:
    def __init__(self, cases: list[tuple[np.ndarray, dict]], context: int = 4, targets_per_sample: int = 3,
                 frame_step_range: tuple[int, int] = (2, 8), uneven_steps: bool = True, split: str = "train",
                 validation_fraction: float = 0.1) -> None:
        self.context, self.targets = context, targets_per_sample
        self.low_step, self.high_step = int(frame_step_range[0]), int(frame_step_range[1])
        self.uneven, self.split, self.fraction = uneven_steps, split, validation_fraction
        shortest = (context - 1) * self.low_step + 1
        self.clips = [(frames, props) for frames, props in cases if frames.shape[0] >= shortest]
        skipped = [props.get("case", "?") for frames, props in cases if frames.shape[0] < shortest]
        if skipped and split == "train":
            print(f"isrnet: notice: skipping {len(skipped)} clip(s) shorter than the {shortest} frames a sample "
                  f"needs: {', '.join(skipped)}", file=sys.stderr)
        if not self.clips:
            raise IsrnetError(f"no clip has the {shortest} frames that {context} context frames at step "
                              f"{self.low_step} need; use longer clips")

    def sample(self, rng: np.random.Generator, batch_size: int, patch: int) -> Batch:
        return stack_samples([self._one(rng, patch) for _ in range(batch_size)])

    def _one(self, rng: np.random.Generator, patch: int):
        for _ in range(100):
            frames, _ = self.clips[int(rng.integers(len(self.clips)))]
            step = int(rng.integers(self.low_step, self.high_step + 1))
            if frames.shape[0] >= (self.context - 1) * step + 1 + (self.context - 1 if self.uneven else 0):
                break
        else:
            step = self.low_step
        gaps = np.full(self.context - 1, step)
        if self.uneven:
            gaps = gaps + rng.integers(-1, 2, size=self.context - 1) * (step > 2)
        span = int(gaps.sum()) + 1
        start = int(rng.integers(0, frames.shape[0] - span + 1))
        kept = start + np.concatenate([[0], np.cumsum(gaps)])
        left, right = kept[self.context // 2 - 1], kept[self.context // 2]
        between = np.arange(left + 1, right)
        chosen = rng.choice(between, size=self.targets, replace=between.size < self.targets)
        rows = split_window(frames.shape[1], patch, rng, self.fraction, self.split)  # held-out central rows
        cols = random_window(frames.shape[2], patch, rng)
        context = pad_to(np.asarray(frames[kept][:, rows, cols], dtype=np.float32) / 255.0,
                         (self.context, patch, patch))
        truth = pad_to(np.asarray(frames[chosen][:, rows, cols], dtype=np.float32) / 255.0,
                       (self.targets, patch, patch))
        positions = ((chosen - left) / (right - left)).astype(np.float32)
        context, positions, truth = augment(context, positions, truth, rng)
        return context, positions, truth, float(right - left), 0.0
