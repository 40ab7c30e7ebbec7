"""`isr_plan_and_preprocess` end to end on tiny datasets: good runs, overrides, and one-line errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_volume
from isrnet.imageio import Volume, write_volume
from isrnet.utilities.files import load_json

NAME = "Dataset001_Test"


def _plans(folders) -> Path:
    return folders.preprocessed / NAME / "plans.json"


def _assert_one_line_error(result, *names: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.err
    assert result.error_line is not None, result.err
    assert not result.after_error, result.err  # the message is one line
    for name in names:
        assert name in result.error_line


# --- good runs ---------------------------------------------------------------------------------

def test_mixed_dataset_end_to_end(folders, make_dataset, mixed_cases, cli) -> None:
    make_dataset(NAME, mixed_cases)
    result = cli("-d", "1", "-np", "1")
    assert result.code == 0, result.err
    plans = load_json(_plans(folders))
    assert (plans["cases"]["axial"]["slice_axis"], plans["cases"]["sagittal"]["slice_axis"]) == (2, 1)
    assert plans["cases"]["axial"]["factor"] == pytest.approx(6.0)
    assert plans["cases"]["sagittal"]["factor"] == pytest.approx(4.29, abs=0.005)
    assert "iso: skipped, near-isotropic" in result.out
    assert "axial: slice axis 2" in result.out and "factor x6," in result.out
    assert "sagittal: slice axis 1" in result.out
    output = folders.preprocessed / NAME
    assert sorted(p.name for p in (output / "data").iterdir()) == ["axial.npy", "sagittal.npy"]
    assert (output / "dataset_fingerprint.json").is_file()
    assert "done in" in result.out


@pytest.mark.parametrize("identifier", ["001", NAME])
def test_rerun_with_pool_and_other_id_forms(folders, make_dataset, mixed_cases, cli, identifier: str) -> None:
    make_dataset(NAME, mixed_cases)
    assert cli("-d", "1", "-np", "1").code == 0
    first = np.load(folders.preprocessed / NAME / "data" / "axial.npy")
    result = cli("-d", identifier)  # default: 2 worker processes
    assert result.code == 0, result.err
    np.testing.assert_array_equal(np.load(folders.preprocessed / NAME / "data" / "axial.npy"), first)


def test_overrides_are_recorded(folders, make_dataset, mixed_cases, cli) -> None:
    make_dataset(NAME, mixed_cases)
    result = cli("-d", "1", "-np", "1", "--factor", "2", "--set", "training.patch_size=64", "sampler.pairs=slices")
    assert result.code == 0, result.err
    plans = load_json(_plans(folders))
    assert plans["training"]["patch_size"] == 64
    assert plans["overrides"] == {"training.patch_size": 64, "sampler.pairs": "slices", "factor": 2.0}
    assert all(case["factor"] == 2.0 for case in plans["cases"].values())


def test_target_spacing_override(folders, make_dataset, mixed_cases, cli) -> None:
    make_dataset(NAME, mixed_cases)
    assert cli("-d", "1", "-np", "1", "--target-spacing", "1.0").code == 0
    plans = load_json(_plans(folders))
    assert plans["cases"]["axial"]["factor"] == pytest.approx(3.0)
    assert plans["overrides"]["target_spacing"] == 1.0


def test_4d_image_becomes_one_case_with_frames(folders, make_dataset, cli) -> None:
    make_dataset(NAME, {"dyn": [make_volume((12, 12, 6), (0.8, 0.8, 4.0), seed=s) for s in range(3)]})
    result = cli("-d", "1", "-np", "1")
    assert result.code == 0, result.err
    cases = load_json(_plans(folders))["cases"]
    assert sorted(cases) == ["dyn"] and cases["dyn"]["frames"] == 3
    assert "dyn: slice axis 2" in result.out
    assert np.load(folders.preprocessed / NAME / "data" / "dyn.npy").shape[0] == 3


# --- errors: one line naming the file, exit code 1, no plans.json -------------------------------

def test_unknown_override_key(folders, make_dataset, mixed_cases, cli) -> None:
    make_dataset(NAME, mixed_cases)
    _assert_one_line_error(cli("-d", "1", "-np", "1", "--set", "training.patch_sizes=64"), "training.patch_sizes")
    assert not _plans(folders).exists()


def test_all_cases_near_isotropic(folders, make_dataset, cli) -> None:
    make_dataset(NAME, {"a": make_volume((10, 10, 10), (1.0, 1.0, 1.1))})
    _assert_one_line_error(cli("-d", "1", "-np", "1"), "every case was skipped", "near-isotropic")
    assert not _plans(folders).exists()


def test_hr_mr_with_anisotropic_volume(folders, make_dataset, cli) -> None:
    make_dataset(NAME, {"thick": make_volume((10, 10, 10), (1.0, 1.0, 2.0))}, kind="hr_mr")
    _assert_one_line_error(cli("-d", "1", "-np", "1"), "thick", "hr_mr")
    assert not _plans(folders).exists()


@pytest.mark.parametrize("identifier, message", [("2", "Dataset001_Test"), ("x", "Dataset001_Test")])
def test_unknown_dataset_lists_existing(folders, make_dataset, mixed_cases, cli, identifier, message) -> None:
    make_dataset(NAME, mixed_cases)
    _assert_one_line_error(cli("-d", identifier), message)


def test_ambiguous_dataset(folders, make_dataset, mixed_cases, cli) -> None:
    make_dataset("Dataset001_A", mixed_cases)
    make_dataset("Dataset001_B", mixed_cases)
    _assert_one_line_error(cli("-d", "1"), "ambiguous", "Dataset001_A", "Dataset001_B")
    assert not (folders.preprocessed / "Dataset001_A").exists()


@pytest.mark.parametrize("content, message", [(None, "is missing"), ('{"name": "Test", ', "not valid JSON")])
def test_bad_dataset_json(folders, make_dataset, mixed_cases, cli, content, message: str) -> None:
    folder = make_dataset(NAME, mixed_cases, info=content)
    _assert_one_line_error(cli("-d", "1", "-np", "1"), str(folder / "dataset.json"), message)
    assert not _plans(folders).exists()


def _bad_image(images: Path, kind: str) -> Path:
    """Write one bad image into imagesTr/ and return its path."""
    if kind == "truncated":
        path = write_volume(make_volume((20, 20, 8), (0.5, 0.5, 3.0), seed=9), images / "bad.nii.gz")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "garbage":
        path = images / "bad.nii.gz"
        path.write_bytes(b"\x1f\x8b not really gzip")
    elif kind == "2d":
        path = images / "bad.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(np.ones((16, 16), np.float32)), str(path))
    else:
        array = {"nan": np.full((16, 16, 6), np.nan, np.float32), "zero": np.zeros((16, 16, 6), np.float32),
                 "thin": np.ones((16, 16, 3), np.float32)}[kind]
        path = write_volume(Volume(array, (0.5, 0.5, 3.0)), images / "bad.nii.gz")
    return path


@pytest.mark.parametrize("kind, message", [
    ("truncated", "truncated"), ("garbage", "cannot be read"), ("2d", "2D"),
    ("nan", "NaN"), ("zero", "all voxels are zero"), ("thin", "only 3 slices"),
])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_image(folders, make_dataset, mixed_cases, cli, kind: str, message: str, workers: str) -> None:
    folder = make_dataset(NAME, mixed_cases)
    path = _bad_image(folder / "imagesTr", kind)
    _assert_one_line_error(cli("-d", "1", "-np", workers), str(path), message)
    assert not _plans(folders).exists()
    assert not (folders.preprocessed / NAME / "dataset_fingerprint.json").exists()


def test_console_script_error(folders, make_dataset, tmp_path: Path) -> None:
    folder = make_dataset(NAME, {"a": make_volume((16, 16, 6), (0.5, 0.5, 3.0))})
    path = _bad_image(folder / "imagesTr", "truncated")
    script = shutil.which("isr_plan_and_preprocess", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-c", "from isrnet.cli.plan_and_preprocess import "
                                       "main_plan_and_preprocess as main; main()"]
    result = subprocess.run([*command, "-d", "1", "-np", "1"], env=dict(os.environ),
                            capture_output=True, encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr[result.stderr.index("isr_plan_and_preprocess: error:"):]
    assert str(path) in message and message.strip().count("\n") == 0
    assert not _plans(folders).exists()


def test_argument_errors_exit_2(folders, cli) -> None:
    result = cli("-d", "1", "--factor", "-2")
    assert result.code == 2 and "must be positive" in result.err
    result = cli("-d", "1", "--factor", "2", "--target-spacing", "1")
    assert result.code == 2 and "not allowed with" in result.err
