"""isr_predict and the Predictor: exact geometry, intensity scale, folders, DICOM, parts, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.imageio import Volume, read_volume, write_volume, write_volumes
from isrnet.inference.predict_files import find_inputs, part_of
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.networks import build_network
from isrnet.training.checkpointing import save_checkpoint
from tests.conftest import rotation


def smooth_volume(shape=(9, 20, 18), spacing=(1.0, 1.0, 1.0), direction=None, origin=(10.0, -5.0, 3.0),
                  scale=1000.0) -> Volume:
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    array = (scale * (0.2 + np.sin(3 * z + 2 * y) ** 2 * np.cos(2 * x) ** 2)).astype(np.float32)
    return Volume(array, spacing, np.asarray(origin), np.eye(3) if direction is None else direction)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An untrained network (exactly cubic interpolation) saved as a checkpoint."""
    torch.manual_seed(0)
    network = build_network(DEFAULT_NETWORK)
    path = tmp_path / "model" / "checkpoint_final.pth"
    path.parent.mkdir()
    save_checkpoint({"network": DEFAULT_NETWORK, "state_dict": network.state_dict()}, path)
    return path


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_oblique_geometry_and_intensity_scale(checkpoint: Path, slice_axis: int) -> None:
    spacing = [0.8, 0.8, 0.8]
    spacing[slice_axis] = 3.2
    shape = [20, 18, 16]
    shape[slice_axis] = 7
    volume = smooth_volume(tuple(shape), tuple(spacing), rotation(0.3, -0.4, 0.2))
    result = Predictor.from_checkpoint(checkpoint).predict(volume)
    factor = 4.0
    assert result.shape[slice_axis] == (shape[slice_axis] - 1) * 4 + 1
    assert np.allclose(result.direction, volume.direction)
    assert np.allclose(result.origin, volume.origin)
    expected = list(spacing)
    expected[slice_axis] = spacing[slice_axis] / factor
    assert np.allclose(result.spacing, expected)
    for k in range(shape[slice_axis]):  # every input slice: same world position, same voxels
        index_in, index_out = np.zeros(3), np.zeros(3)
        index_in[slice_axis], index_out[slice_axis] = k, 4 * k
        assert np.allclose(volume.index_to_world(index_in), result.index_to_world(index_out))
        assert np.array_equal(np.take(result.array, 4 * k, axis=slice_axis), np.take(volume.array, k, axis=slice_axis))
    assert 0.9 * volume.array.min() < np.median(result.array) < 1.1 * volume.array.max()


def test_non_integer_factor_grid(checkpoint: Path) -> None:
    volume = smooth_volume((6, 16, 16), (3.0, 0.7, 0.7))
    result = Predictor.from_checkpoint(checkpoint).predict(volume)
    factor = 3.0 / 0.7
    assert result.shape[0] == int(np.floor(5 * factor)) + 1
    assert np.isclose(result.spacing[0], 0.7)
    assert np.array_equal(result.array[0], volume.array[0])


def test_array_api(checkpoint: Path) -> None:
    array, spacing = Predictor.from_checkpoint(checkpoint).predict_array(smooth_volume().array, (4.0, 1.0, 1.0))
    assert array.shape == (33, 20, 18) and np.allclose(spacing, (1.0, 1.0, 1.0))


def run_predict(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from isrnet.cli.predict import main; main()", *arguments],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=300)


def test_folder_nrrd_4d_and_sidecar(tmp_path: Path, checkpoint: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    write_volume(smooth_volume(spacing=(4.0, 1.0, 1.0)), source / "a.nii.gz")
    write_volume(smooth_volume(spacing=(1.0, 1.0, 3.0)), source / "b.nrrd")
    write_volumes([smooth_volume(spacing=(1.0, 3.0, 1.0), scale=s) for s in (10.0, 20.0)], source / "dwi.nii.gz")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    done = run_predict("-i", str(source), "-o", str(tmp_path / "out"), "-m", str(checkpoint.parent))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.json", "a.nii.gz", "b.json", "b.nrrd", "dwi.json", "dwi.nii.gz"]
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before  # inputs untouched
    dwi = sitk.ReadImage(str(tmp_path / "out" / "dwi.nii.gz"))
    assert dwi.GetDimension() == 4 and dwi.GetSize()[3] == 2
    sidecar = json.loads((tmp_path / "out" / "a.json").read_text())
    assert sidecar["factor"] == pytest.approx(4.0) and sidecar["slice_axis"] == 0 and "isrnet_version" in sidecar


def test_dicom_series_input(tmp_path: Path, checkpoint: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    volume = smooth_volume((6, 16, 16), (3.0, 0.5, 0.5), scale=500.0)
    for k in range(volume.shape[0]):
        image = sitk.GetImageFromArray(volume.array[k].astype(np.int16))
        image.SetSpacing((0.5, 0.5))
        for tag, value in (("0008|0060", "MR"), ("0020|000d", "1.2.3"), ("0020|000e", "1.2.3.4"),
                           ("0020|0032", f"0\\0\\{3.0 * k}"), ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0020|0013", str(k + 1)), ("0018|0050", "3.0"), ("0028|0030", "0.5\\0.5")):
            image.SetMetaData(tag, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(series / f"slice{k:03d}.dcm"))
        writer.Execute(image)
    done = run_predict("-i", str(series), "-o", str(tmp_path / "out"), "-m", str(checkpoint))
    assert done.returncode == 0, done.stderr
    result = read_volume(tmp_path / "out" / "series.nii.gz")
    assert result.shape[0] == 31 and np.isclose(result.spacing[0], 0.5)  # 3 mm / 0.5 mm: x6


def test_parts_cover_every_case_once(tmp_path: Path) -> None:
    for index in range(7):
        write_volume(smooth_volume(spacing=(4.0, 1.0, 1.0)), tmp_path / f"c{index}.nii.gz")
    inputs = find_inputs(tmp_path)
    parts = [part_of(inputs, 3, k) for k in range(3)]
    flattened = [p for part in parts for p in part]
    assert sorted(flattened) == sorted(inputs) and len(flattened) == len(set(flattened))


def test_bad_inputs_leave_nothing(tmp_path: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    missing = run_predict("-i", str(tmp_path / "nope"), "-o", str(out), "-m", str(checkpoint))
    assert missing.returncode == 1 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "notes.txt").write_text("x")
    unsupported = run_predict("-i", str(tmp_path / "notes.txt"), "-o", str(out), "-m", str(checkpoint))
    assert unsupported.returncode == 1 and "unsupported format" in unsupported.stderr
    isotropic = tmp_path / "iso.nii.gz"
    write_volume(smooth_volume(spacing=(1.0, 1.0, 1.1)), isotropic)
    near = run_predict("-i", str(isotropic), "-o", str(out), "-m", str(checkpoint))
    assert near.returncode == 1 and "near-isotropic" in near.stderr
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((8, 8), np.float32)), str(flat))
    two_d = run_predict("-i", str(flat), "-o", str(out), "-m", str(checkpoint))
    assert two_d.returncode == 1 and "2D" in two_d.stderr
    same = run_predict("-i", str(tmp_path), "-o", str(tmp_path), "-m", str(checkpoint))
    assert same.returncode == 1 and "never overwrites" in same.stderr
    no_model = run_predict("-i", str(isotropic), "-o", str(out), "-m", str(tmp_path / "nomodel"))
    assert no_model.returncode == 1 and "no such model" in no_model.stderr
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix in (".gz", ".nrrd", ".json")]


def test_large_factor_warns(checkpoint: Path) -> None:
    predictor = Predictor.from_checkpoint(checkpoint)
    predictor.trained_factors = (2.0, 4.0)
    with pytest.warns(UserWarning, match="far above"):
        predictor.predict(smooth_volume((4, 8, 8), (10.0, 1.0, 1.0)), PredictionSettings(factor=10))


def test_dataset_model_is_the_untagged_latest_stage(folders, checkpoint: Path) -> None:
    import shutil

    from isrnet.errors import IsrnetError
    from isrnet.inference.model_resolution import from_dataset
    runs = folders.results / "Dataset001_Test"
    for run in ("mrft", "ssft__scratch", "supervised__upper_bound"):
        (runs / run).mkdir(parents=True)
        shutil.copy(checkpoint, runs / run / "checkpoint_final.pth")
    assert from_dataset("Dataset001_Test").description.endswith("/mrft")
    (runs / "ssft").mkdir()
    shutil.copy(checkpoint, runs / "ssft" / "checkpoint_final.pth")
    assert from_dataset("Dataset001_Test").description.endswith("/ssft")
    assert from_dataset("Dataset001_Test", "ssft__scratch").description.endswith("/ssft__scratch")
    with pytest.raises(IsrnetError, match="valid stages"):
        from_dataset("Dataset001_Test", "supervised__upper_bound")
    with pytest.raises(IsrnetError, match="isr_train"):
        from_dataset("Dataset001_Test", "video")


def test_parallel_cases_and_flip_averaging(tmp_path: Path, checkpoint: Path) -> None:
    source = tmp_path / "in"
    for name in ("a", "b"):
        write_volume(smooth_volume(spacing=(4.0, 1.0, 1.0)), source / f"{name}.nii.gz")
    done = run_predict("-i", str(source), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "-np", "2", "--tta")
    assert done.returncode == 0, done.stderr
    serial = Predictor.from_checkpoint(checkpoint).predict(read_volume(source / "a.nii.gz"))
    parallel = read_volume(tmp_path / "out" / "a.nii.gz")
    assert np.allclose(parallel.array, serial.array, atol=1e-3)  # untrained = cubic, which flips leave unchanged
