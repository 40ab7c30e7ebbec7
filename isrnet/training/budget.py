"""A wall-clock budget turned into an iteration count, re-estimated as training runs.

The count is first measured on a few warm-up iterations, then re-estimated every RE_ESTIMATE_EVERY iterations
from the throughput since the previous estimate: a machine that was busy during the warm-up and idle afterwards
(or the reverse) still ends its run within the budget and uses it, and the learning-rate schedule, which follows
the current count, still ends at 0 where the run ends. Validations are timed apart from the training steps and
charged at their own rate, so a window that happens to hold one does not look slow. The cadence counts
iterations, not seconds, so every torchrun rank re-estimates at the same step (and trains rank 0's count).
`--iterations N` and `--c` keep a fixed count (reproducible).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

SAVE_RESERVE_SECONDS = 5.0
BUDGET_SAFETY = 0.95  # iterations slow down a little after the warm-up (checkpoints, caches): keep a margin
RE_ESTIMATE_EVERY = 10  # iterations; short runs (a 2-min CPU budget is ~50 iterations) re-estimate too


@dataclass
class IterationBudget:
    budget_minutes: float
    command_start: float  # the budget counts from when the command started
    window_start: float = field(default_factory=time.time)
    window_iteration: int = 0
    window_excluded: float = 0.0  # seconds of the current window spent validating
    history: list = field(default_factory=list)  # (iteration, total, seconds per iteration) of every estimate

    def start_window(self, iteration: int) -> None:
        self.window_start, self.window_iteration, self.window_excluded = time.time(), iteration, 0.0

    def exclude(self, seconds: float) -> None:
        """Time spent outside training steps (a validation): not part of the per-iteration speed."""
        self.window_excluded += seconds

    def total(self, iteration: int, per_iteration: float, validation_seconds: float) -> int:
        """The iteration count that ends the command within the budget at `per_iteration` seconds each."""
        remaining = self.budget_minutes * 60 - (time.time() - self.command_start) - SAVE_RESERVE_SECONDS \
            - validation_seconds
        total = max(iteration, iteration + int(BUDGET_SAFETY * remaining / max(per_iteration, 1e-9)))
        self.history.append([iteration, total, round(per_iteration, 4)])
        return total

    def re_estimate(self, iteration: int, validation_per_iteration: float, validation_seconds: float) -> int | None:
        """A new count from the training steps' speed since the last estimate plus validation's cost spread over
        the iterations (`validation_per_iteration`), keeping `validation_seconds` for the final validation; None
        when too few iterations have passed to measure."""
        done = iteration - self.window_iteration
        if done < 1:
            return None
        per_iteration = (time.time() - self.window_start - self.window_excluded) / done + validation_per_iteration
        total = self.total(iteration, per_iteration, validation_seconds)
        self.start_window(iteration)
        return total
