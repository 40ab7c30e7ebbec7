"""Building a raw dataset folder safely: written under a temporary name, renamed when complete.

A crash never leaves a half-written `DatasetXXX_Name/`; re-running keeps a complete dataset unless
`overwrite` is given. Also: `dataset.json` writing and PNG frame folders shared by the converters.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from isrnet import paths
from isrnet.datasets import DATASET_PATTERN, KINDS
from isrnet.errors import IsrnetError
from isrnet.utilities.files import atomic_folder, save_json

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


def dataset_folder_name(dataset_id: int | str, name: str) -> str:
    """(1, 'DemoBrain') -> 'Dataset001_DemoBrain'; checks the ID range and the name."""
    try:
        number = int(str(dataset_id))
    except ValueError:
        raise IsrnetError(f"dataset ID '{dataset_id}' is not a whole number (use 1 to 999)") from None
    if not 1 <= number <= 999:
        raise IsrnetError(f"dataset ID {number} is out of range; use 1 to 999")
    if not _NAME_PATTERN.match(name):
        raise IsrnetError(f"dataset name '{name}' may only hold letters, digits and _ (e.g. MyKnees)")
    return f"Dataset{number:03d}_{name}"


def _check_id_free(raw: Path, folder_name: str) -> None:
    number = DATASET_PATTERN.match(folder_name).group(1)
    clashes = [p.name for p in raw.glob(f"Dataset{number}_*") if p.is_dir() and p.name != folder_name]
    if clashes:
        raise IsrnetError(f"dataset ID {number} is already used by {', '.join(clashes)} in {raw}; "
                          f"choose another ID (-d) or remove that folder")


def _remove_stale_partials(raw: Path, folder_name: str) -> None:
    for stale in raw.glob(f".{folder_name}.partial*"):
        pid = stale.name.rsplit("partial", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def build_dataset(folder_name: str, fill: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Create `raw/folder_name` by calling `fill(temporary_folder)`; returns the final folder.

    An existing complete dataset (one with dataset.json) is kept unless `overwrite`.
    """
    raw = paths.raw_folder()
    final = raw / folder_name
    if final.exists() and not overwrite:
        if (final / "dataset.json").is_file():
            notice(f"{final} exists already; kept (use --overwrite to rebuild it)")
            return final
        raise IsrnetError(f"{final} exists but has no dataset.json (not made by isr_convert?); "
                          f"remove it or use --overwrite to replace it")
    raw.mkdir(parents=True, exist_ok=True)
    _check_id_free(raw, folder_name)
    _remove_stale_partials(raw, folder_name)
    with atomic_folder(final) as temporary:
        fill(temporary)
        if not (temporary / "dataset.json").is_file():
            raise RuntimeError("converter did not write dataset.json")
    return final


def write_dataset_json(folder: Path, name: str, kind: str, file_ending: str, count: int,
                       description: str, licence: str,
                       thickness_mm: float | dict[str, float] | None = None, extra: dict | None = None) -> None:
    """dataset.json in the format `isrnet.datasets.load_dataset_info` reads (`extra`: further top-level keys);
    `thickness_mm` (for every case, or case -> mm) becomes the declared `slice_profile`."""
    if kind not in KINDS:
        raise IsrnetError(f"kind '{kind}' is unknown; use one of {', '.join(KINDS)}")
    content: dict = {"name": name, "file_ending": file_ending, "kind": kind}
    if isinstance(thickness_mm, dict):
        content["slice_profile"] = {case: {"thickness_mm": value} for case, value in thickness_mm.items()}
    elif thickness_mm is not None:
        content["slice_profile"] = {"thickness_mm": thickness_mm}
    content.update({"description": description, "licence": licence, "numTraining": count, **(extra or {})})
    save_json(content, folder / "dataset.json")


def write_frames(frames: np.ndarray, folder: Path) -> None:
    """Write greyscale frames [T, H, W] in [0, 1] as 8-bit `folder/frame_0000.png`, ..."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    as_bytes = np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    for index, frame in enumerate(as_bytes):
        Image.fromarray(frame).save(folder / f"frame_{index:04d}.png")


def notice(message: str) -> None:
    """A progress or warning line for the user (stderr, so stdout stays clean)."""
    print(message, file=sys.stderr, flush=True)
