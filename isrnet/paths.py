"""The three isrnet folders, read lazily from environment variables.

`isrnet_raw`, `isrnet_preprocessed` and `isrnet_results` are read when a folder is first needed, never
at import. An unset variable falls back to `./isrnet_data/{raw,preprocessed,results}` (relative to the
current working directory) and a one-time notice says so. See documentation/setting_up_paths.md.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_DEFAULT_ROOT = Path("isrnet_data")
_FOLDERS = {
    "isrnet_raw": "raw",
    "isrnet_preprocessed": "preprocessed",
    "isrnet_results": "results",
}
_noticed: set[str] = set()


def _folder(variable: str) -> Path:
    value = os.environ.get(variable)
    if value:
        return Path(value).expanduser()
    default = (_DEFAULT_ROOT / _FOLDERS[variable]).resolve()
    if variable not in _noticed:
        _noticed.add(variable)
        print(f"isrnet: ${variable} is not set, using {default} "
              f"(see documentation/setting_up_paths.md)", file=sys.stderr)
    return default


def raw_folder() -> Path:
    """Raw datasets: `DatasetXXX_Name/{imagesTr, referenceTr, dataset.json}`."""
    return _folder("isrnet_raw")


def preprocessed_folder() -> Path:
    """Fingerprints, plans and preprocessed arrays, one sub-folder per dataset."""
    return _folder("isrnet_preprocessed")


def results_folder() -> Path:
    """Trained models: `DatasetXXX_Name/<stage>[__<tag>]/`."""
    return _folder("isrnet_results")


@contextmanager
def folders_under(root: Path) -> Iterator[None]:
    """The three folders as `root/{raw,preprocessed,results}` for the duration of the block (a private
    workspace, e.g. the hidden-slice evaluation's thinned dataset), then as they were."""
    saved = {variable: os.environ.get(variable) for variable in _FOLDERS}
    os.environ.update({variable: str(Path(root) / folder) for variable, folder in _FOLDERS.items()})
    try:
        yield
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
