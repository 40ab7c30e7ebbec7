"""Shared fixtures: the three isrnet folders in tmp_path and tiny raw datasets written by the tests."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

from isrnet.imageio import Volume, write_volumes


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def rotation(a: float, b: float, c: float) -> np.ndarray:
    """An oblique orthonormal matrix (rotations about z, x and y)."""
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


def make_volume(shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0,
                origin: tuple[float, float, float] = (0.0, 0.0, 0.0), direction: np.ndarray | None = None,
                margin: int = 2) -> Volume:
    """Zero background with a bright random block `margin` voxels in from every face."""
    rng = np.random.default_rng(seed)
    array = np.zeros(shape, dtype=np.float32)
    inner = tuple(slice(margin, n - margin) if n > 2 * margin else slice(None) for n in shape)
    array[inner] = 100.0 + 50.0 * rng.random(array[inner].shape, dtype=np.float32)
    return Volume(array, spacing, np.asarray(origin), np.eye(3) if direction is None else direction)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """$isrnet_raw, $isrnet_preprocessed and $isrnet_results inside tmp_path."""
    result = SimpleNamespace(raw=tmp_path / "raw", preprocessed=tmp_path / "preprocessed",
                             results=tmp_path / "results")
    monkeypatch.setenv("isrnet_raw", str(result.raw))
    monkeypatch.setenv("isrnet_preprocessed", str(result.preprocessed))
    monkeypatch.setenv("isrnet_results", str(result.results))
    result.raw.mkdir()
    return result


@pytest.fixture
def make_dataset(folders: SimpleNamespace) -> Callable[..., Path]:
    """make_dataset(name, {case: Volume or [Volume, ...]}, kind=..., info=...) -> raw dataset folder.

    `info` replaces dataset.json: a dict is written as JSON, a str as raw text, None leaves it out.
    """
    def make(name: str = "Dataset001_Test", cases: dict | None = None, kind: str = "target",
             info: dict | str | None | bool = True) -> Path:
        folder = folders.raw / name
        images = folder / "imagesTr"
        images.mkdir(parents=True)
        for case, volumes in (cases or {}).items():
            write_volumes(volumes if isinstance(volumes, list) else [volumes], images / f"{case}.nii.gz")
        if info is True:
            info = {"name": name.split("_", 1)[1], "file_ending": ".nii.gz", "kind": kind}
        if isinstance(info, dict):
            (folder / "dataset.json").write_text(json.dumps(info))
        elif isinstance(info, str):
            (folder / "dataset.json").write_text(info)
        return folder
    return make


@pytest.fixture
def mixed_cases() -> dict[str, Volume]:
    """An axial series (slice axis 2), a sagittal one (slice axis 1) and a near-isotropic one."""
    return {"axial": make_volume((20, 18, 8), (0.5, 0.5, 3.0), seed=1),
            "sagittal": make_volume((18, 8, 20), (0.7, 3.0, 0.7), seed=2,
                                    origin=(5.0, -3.0, 2.0), direction=rotation(0.3, 0.2, 0.1)),
            "iso": make_volume((12, 12, 12), (1.0, 1.0, 1.1), seed=3)}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., SimpleNamespace]:
    """cli('-d', '1', ...) runs isr_plan_and_preprocess in-process -> (code, out, err, error_line)."""
    from isrnet.cli.plan_and_preprocess import main_plan_and_preprocess

    def run(*args: str) -> SimpleNamespace:
        monkeypatch.setattr(sys, "argv", ["isr_plan_and_preprocess", *args])
        with pytest.raises(SystemExit) as exit_info:
            main_plan_and_preprocess()
        captured = capsys.readouterr()
        # tqdm redraws with carriage returns; the error is whatever follows the last one
        pieces = [p for p in re.split(r"[\r\n]", captured.err) if p.strip()]
        errors = [i for i, p in enumerate(pieces) if p.startswith("isr_plan_and_preprocess: error:")]
        error_line = pieces[errors[0]] if errors else None
        trailing = pieces[errors[0] + 1:] if errors else []
        return SimpleNamespace(code=exit_info.value.code or 0, out=captured.out, err=captured.err,
                               error_line=error_line, after_error=trailing)
    return run


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    """A checkpoint of a small network (random weights, fixed seed) to start fine-tuning or fusion from."""
    import torch
    from isrnet.configuration import DEFAULT_NETWORK
    from isrnet.networks import build_network
    from isrnet.training.checkpointing import save_checkpoint
    from training_support import SMALL_NETWORK
    torch.manual_seed(0)
    config = {"name": DEFAULT_NETWORK["name"], "kwargs": {**DEFAULT_NETWORK["kwargs"], **SMALL_NETWORK}}
    path = tmp_path / "small.pth"
    save_checkpoint({"network": config, "state_dict": build_network(config).state_dict()}, path)
    return path
