"""A wall-clock budget turned into an iteration count, re-estimated as training runs.

The count is first measured on a few warm-up iterations, then re-estimated at every validation from the
throughput since the previous estimate: a machine that was busy during the warm-up and idle afterwards (or the
reverse) still ends its run within the budget and uses it, and the learning-rate schedule, which follows the
current count, still ends at 0 where the run ends. `--iterations N` and `--c` keep a fixed count (reproducible).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

SAVE_RESERVE_SECONDS = 5.0
BUDGET_SAFETY = 0.95  # iterations slow down a little after the warm-up (checkpoints, caches): keep a margin


@dataclass
class IterationBudget:
    budget_minutes: float
    command_start: float  # the budget counts from when the command started
    window_start: float = field(default_factory=time.time)
    window_iteration: int = 0
    history: list = field(default_factory=list)  # (iteration, total, seconds per iteration) of every estimate

    def start_window(self, iteration: int) -> None:
        self.window_start, self.window_iteration = time.time(), iteration

    def total(self, iteration: int, per_iteration: float, validation_seconds: float) -> int:
        """The iteration count that ends the command within the budget at `per_iteration` seconds each."""
        remaining = self.budget_minutes * 60 - (time.time() - self.command_start) - SAVE_RESERVE_SECONDS \
            - validation_seconds
        total = max(iteration, iteration + int(BUDGET_SAFETY * remaining / max(per_iteration, 1e-9)))
        self.history.append([iteration, total, round(per_iteration, 4)])
        return total

    def re_estimate(self, iteration: int, validation_seconds: float) -> int | None:
        """A new count from the throughput since the last estimate (validations included), or None when too few
        iterations have passed to measure."""
        done = iteration - self.window_iteration
        if done < 1:
            return None
        per_iteration = (time.time() - self.window_start) / done
        total = self.total(iteration, per_iteration, validation_seconds)
        self.start_window(iteration)
        return total
