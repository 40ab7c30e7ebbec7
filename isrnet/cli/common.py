"""What every command line shares: one-line errors, dataset/device arguments, JSON override parsing."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from isrnet.errors import IsrnetError


def run_cli(prog: str, body: Callable[[], int | None]) -> None:
    """Run `body`; IsrnetError -> 'prog: error: message' on stderr and exit 1; Ctrl-C -> exit 130."""
    try:
        code = body()
    except IsrnetError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """['training.lr=0.001', 'sampler.pairs="slices"'] -> {'training.lr': 0.001, ...} (values as JSON)."""
    result = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise IsrnetError(f"--set expects KEY=VALUE, got '{pair}'")
        key, text = pair.split("=", 1)
        try:
            result[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            result[key.strip()] = text
    return result


def _positive(cast: Callable[[str], float], noun: str) -> Callable[[str], float]:
    """An argparse type: `cast(text)` that must be > 0, with a readable error."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {noun}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{value} must be positive")
        return value
    return parse


positive_float = _positive(float, "a number")
positive_int = _positive(int, "a whole number")
