"""Atomic JSON / array writes: a temporary name in the same folder, renamed when complete."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial{os.getpid()}")


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write `data` to a temporary name beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(text: str, path: str | Path) -> None:
    atomic_write_bytes(text.encode("utf-8"), path)


def save_figure(figure: Any, path: str | Path, dpi: int = 100) -> None:
    """Save a matplotlib figure atomically (PNG) and close it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    atomic_write_bytes(buffer.getvalue(), path)


def save_json(content: Any, path: str | Path) -> None:
    atomic_write_text(json.dumps(content, indent=2, sort_keys=False, default=_to_builtin), path)


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_array(array: np.ndarray, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        with open(temporary, "wb") as handle:
            np.save(handle, array)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
