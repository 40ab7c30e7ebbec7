"""Atomic writes, the one home: files and folders appear under their final name only when complete.

Everything isrnet writes goes through `atomic_file` (a temporary name beside the target, fsync, rename) or
`atomic_folder` (a temporary folder beside the target, swapped into place). A crash, a kill or a full disk
leaves the previous version (or nothing), never half a file. Multi-file images (.nhdr/.mhd) are written by
imageio.reader_writer into such a temporary folder too.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np


def temporary_name(path: Path) -> Path:
    """The hidden name a file or folder is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.partial{os.getpid()}")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """Write through the yielded binary handle; on success the file is fsynced and renamed to `path`, on any
    error the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Fill the yielded (empty) temporary folder; on success it replaces `target` (an existing one is moved
    aside first and put back if the swap fails), on any error it is removed and `target` stays as it was."""
    temporary = temporary_name(target)
    previous = target.with_name(f".{target.name}.replaced{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        yield temporary
        if target.exists():
            os.replace(target, previous)
        try:
            os.replace(temporary, target)
        except OSError:
            if previous.exists():
                os.replace(previous, target)
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write `data` to `path` atomically: readers never see half a file."""
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(text: str, path: str | Path) -> None:
    atomic_write_bytes(text.encode("utf-8"), path)


def save_figure(figure: Any, path: str | Path, dpi: int = 100) -> None:
    """Save a matplotlib figure atomically (PNG) and close it."""
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
    with atomic_file(path) as handle:
        np.save(handle, array)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
