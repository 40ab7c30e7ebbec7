"""Map a function over cases in a process pool with a progress bar; errors are collected, not lost."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, TypeVar

from isrnet.errors import IsrnetError
from isrnet.utilities.progress import progress

T = TypeVar("T")
R = TypeVar("R")


def map_cases(function: Callable[[T], R], items: Iterable[T], workers: int, description: str) -> list[R | IsrnetError]:
    """`function` over `items` (in order) with `workers` processes; an IsrnetError is returned in place."""
    items = list(items)

    def guarded_results():
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield _guarded(function, item)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                yield from pool.map(_guarded, [function] * len(items), items)

    return list(progress(guarded_results(), total=len(items), desc=description, unit="case", leave=False))


def _guarded(function, item):
    try:
        return function(item)
    except IsrnetError as error:
        return error


def raise_collected(results: list, what: str) -> None:
    """Raise one IsrnetError listing every failed case (one line each; one failure: a single line)."""
    errors = [r for r in results if isinstance(r, IsrnetError)]
    if len(errors) == 1:
        raise IsrnetError(f"{what} failed: {errors[0]}")
    if errors:
        lines = "\n  ".join(str(e) for e in errors)
        raise IsrnetError(f"{what} failed for {len(errors)} case(s):\n  {lines}")
