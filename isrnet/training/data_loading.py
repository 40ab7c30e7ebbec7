"""Batches from a sampler through batchgenerators, with randomness derived from (seed, iteration, rank).

Because each batch's random generator depends only on its iteration number, the batch sequence is the
same with 0, 1 or n workers and after a resume: worker w of n produces iterations start + w, start + w + n,
... and batchgenerators' MultiThreadedAugmenter returns them round-robin, i.e. in iteration order.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from batchgenerators.dataloading.data_loader import DataLoader
from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter

from isrnet.errors import IsrnetError
from isrnet.training.samplers.base import Batch, PairSampler


def batch_rng(seed: int, iteration: int, rank: int = 0, stream: int = 0) -> np.random.Generator:
    """The random generator of one batch: a pure function of its identity."""
    return np.random.default_rng([seed, stream, rank, iteration])


class PairDataLoader(DataLoader):
    """batchgenerators DataLoader whose `generate_train_batch` asks the stage's sampler for a batch."""

    def __init__(self, sampler: PairSampler, batch_size: int, patch: int, seed: int, start_iteration: int,
                 workers: int, rank: int = 0) -> None:
        super().__init__(data=None, batch_size=batch_size, num_threads_in_multithreaded=max(workers, 1),
                         infinite=True)
        self.sampler, self.patch, self.seed, self.rank = sampler, patch, seed, rank
        self.start_iteration, self.produced = start_iteration, 0

    def generate_train_batch(self) -> dict[str, np.ndarray]:
        iteration = self.start_iteration + self.produced * self.number_of_threads_in_multithreaded + self.thread_id
        self.produced += 1
        batch = self.sampler.sample(batch_rng(self.seed, iteration, self.rank), self.batch_size, self.patch)
        return batch.as_dict() | {"iteration": np.array(iteration)}


def batches(sampler: PairSampler, batch_size: int, patch: int, seed: int, start_iteration: int, workers: int,
            rank: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches from `start_iteration` on; a dead worker raises a clear IsrnetError."""
    loader = PairDataLoader(sampler, batch_size, patch, seed, start_iteration, workers, rank)
    if workers == 0:
        augmenter = SingleThreadedAugmenter(loader, None)
    else:
        augmenter = MultiThreadedAugmenter(loader, None, workers, num_cached_per_queue=3,
                                           seeds=[seed + i for i in range(workers)], pin_memory=False)
    try:
        while True:
            try:
                yield next(augmenter)
            except RuntimeError as error:
                if "no longer alive" in str(error):
                    raise IsrnetError("a background sampling worker died (out of memory, or an error printed "
                                      "above); rerun with --workers 0 to see the error in the main process") from None
                raise
    finally:
        if workers:
            augmenter._finish(timeout=2, force=True)


def fixed_batches(sampler: PairSampler, count: int, batch_size: int, patch: int, seed: int) -> list[Batch]:
    """Validation batches: the same every time for a given seed."""
    return [sampler.sample(batch_rng(seed, i, stream=1), batch_size, patch) for i in range(count)]
