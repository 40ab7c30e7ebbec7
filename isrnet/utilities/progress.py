"""Progress that stays readable outside a terminal: a tqdm bar on a TTY, a plain line every few percent when
stderr goes to a file, SLURM or CI (where every `\\r` frame of a bar would become a line of the log).

    with progress(total=500, desc="ssft", unit="it") as bar:
        bar.update(1); bar.set_postfix(loss="0.01")
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator

from tqdm import tqdm

LINE_EVERY_PERCENT = 10


def stderr_is_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class LineProgress:
    """The part of tqdm's interface isrnet uses, printing one line per LINE_EVERY_PERCENT (nothing without a
    total: callers report per case instead)."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, initial: int = 0, desc: str = "",
                 unit: str = "it", disable: bool = False, **_: Any) -> None:
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.start_n = total, initial, initial
        self.started, self.postfix = time.time(), ""
        self.next_percent = self._percent() // LINE_EVERY_PERCENT * LINE_EVERY_PERCENT + LINE_EVERY_PERCENT

    def _percent(self) -> int:
        return int(100 * self.n / self.total) if self.total else 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable or not self.total:
            return
        if self._percent() >= self.next_percent or self.n >= self.total:
            self._line()
            self.next_percent = self._percent() // LINE_EVERY_PERCENT * LINE_EVERY_PERCENT + LINE_EVERY_PERCENT

    def _line(self) -> None:
        elapsed = time.time() - self.started
        done = self.n - self.start_n
        left = elapsed / done * (self.total - self.n) if done > 0 else 0.0
        postfix = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self._percent():3d}% ({self.n}/{self.total} {self.unit}), {_clock(elapsed)} elapsed, "
              f"~{_clock(left)} left{postfix}", file=sys.stderr, flush=True)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{key}={value}" for key, value in values.items())

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)

    def close(self) -> None:
        pass

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


def progress(iterable: Iterable | None = None, **options: Any) -> tqdm | LineProgress:
    """A tqdm bar (options as tqdm's) on a terminal, else a LineProgress with the same options."""
    if stderr_is_terminal():
        return tqdm(iterable, dynamic_ncols=True, **options)
    return LineProgress(iterable, **options)


def write(message: str, file: Any = None) -> None:
    """Print a message (to stdout, or `file`) without breaking a bar: tqdm.write on a terminal, print elsewhere."""
    if stderr_is_terminal():
        tqdm.write(message, file=file)
    else:
        print(message, file=file or sys.stdout, flush=True)


def retarget(bar: Any, total: int, unit: str) -> None:
    """Let a bar made before its work was known count `total` of `unit` instead (e.g. the frames of a time series)."""
    bar.total, bar.unit = total, unit
    if hasattr(bar, "refresh"):
        bar.refresh()
