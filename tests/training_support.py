"""Helpers shared by the training tests (imported, not collected): tiny target datasets, in-process CLIs.

Every run goes through the real entry points: `isr_plan_and_preprocess` and `isr_train` with `sys.argv`
set, so argument parsing, error reporting (`prog: error: ...`, exit 1) and the trainer are all exercised.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from isrnet.imageio import Volume, write_volumes
from isrnet.utilities.files import load_json

# A small network for tests of the training machinery (the real default is used for the quality test).
SMALL_NETWORK = {"encoder_channels": 8, "encoder_blocks": 1, "fusion_channels": 12, "fusion_blocks": 1,
                 "mixer_channels": 8, "decoder_channels": 8}


def smooth_volume(shape: tuple[int, int, int], seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smooth random texture on a dark background, intensities roughly 0..1000 (MR-like)."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return (1000.0 * texture).astype(np.float32)


def spheres_phantom(shape: tuple[int, int, int], seed: int = 0, count: int = 40, smooth: float = 0.7) -> np.ndarray:
    """Overlapping balls of random size and intensity (about 100..1000) on a dark background, lightly blurred:
    sharp-edged structures of every orientation, so in-plane pairs teach what the slice axis lacks."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    volume = np.zeros(shape, dtype=np.float32)
    for _ in range(count):
        centre = rng.uniform(0, np.array(shape, dtype=np.float32))
        radius = rng.uniform(2.0, 9.0)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius ** 2
        volume[inside] = rng.uniform(100.0, 1000.0)
    return ndimage.gaussian_filter(volume, smooth).astype(np.float32)


def write_target(raw: Path, name: str, cases: dict[str, np.ndarray], spacing=(4.0, 1.0, 1.0),
                 thickness: float | None = 4.0, reference: dict[str, np.ndarray] | None = None) -> Path:
    """A raw target dataset; arrays are [Z, Y, X] with the slice axis first (largest spacing)."""
    folder = raw / name
    for case, array in cases.items():
        write_volumes([Volume(array, spacing)], folder / "imagesTr" / f"{case}.nii.gz")
    for case, array in (reference or {}).items():
        write_volumes([Volume(array, (1.0, 1.0, 1.0))], folder / "referenceTr" / f"{case}.nii.gz")
    info = {"name": name.split("_", 1)[1], "file_ending": ".nii.gz", "kind": "target"}
    if thickness is not None:
        info["slice_thickness_mm"] = thickness
    (folder / "dataset.json").write_text(json.dumps(info))
    return folder


def small_plan_overrides(patch: int = 24, batch: int = 2, small_network: bool = True) -> list[str]:
    values = [f"training.patch_size={patch}", f"training.batch_size={batch}", "training.validation_every=3"]
    if small_network:
        values += [f"network.kwargs.{key}={value}" for key, value in SMALL_NETWORK.items()]
    return values


def run_main(main, prog: str, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture) -> SimpleNamespace:
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", [prog, *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    pieces = [p for p in re.split(r"[\r\n]", captured.err) if p.strip()]
    errors = [p for p in pieces if p.startswith(f"{prog}: error:")]
    return SimpleNamespace(code=exit_info.value.code or 0, out=captured.out, err=captured.err,
                           error=errors[0] if errors else None)


def plan_and_preprocess(monkeypatch, capsys, *args: str, expect_ok: bool = True) -> SimpleNamespace:
    from isrnet.cli.plan_and_preprocess import main_plan_and_preprocess
    result = run_main(main_plan_and_preprocess, "isr_plan_and_preprocess", ("-np", "1", *args), monkeypatch, capsys)
    if expect_ok:
        assert result.code == 0, result.err
    return result


def isr_train(monkeypatch, capsys, *args: str, expect_ok: bool = True) -> SimpleNamespace:
    from isrnet.cli.train import main
    result = run_main(main, "isr_train", args, monkeypatch, capsys)
    if expect_ok:
        assert result.code == 0, result.err
    return result


# Save checkpoint_latest after every iteration and validate on one batch (plans keys, set for one run).
FAST_CHECKPOINTS = ("--set", "training.checkpoint_every_seconds=0", "training.validation_batches=1")


def load(path: Path) -> dict:
    from isrnet.training.checkpointing import load_checkpoint
    return load_checkpoint(path)


def run_folder(results: Path, dataset: str, run: str = "ssft") -> Path:
    return results / dataset / run


def debug_of(folder: Path) -> dict:
    return load_json(folder / "debug.json")


@pytest.fixture
def single_thread():
    """One torch thread: on a small, shared CPU, OpenMP threads waiting for each other can make tiny
    convolutions 100x slower; one thread keeps these tests fast and their timing predictable."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
