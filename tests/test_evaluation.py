"""Metrics on constructed arrays, physical-position matching, synthesised-slice selection, isr_evaluate."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isrnet.evaluation.baselines import classic_upsample
from isrnet.evaluation.metrics import compare, synthesised_slices
from isrnet.imageio.geometry import input_slice_positions
from isrnet.imageio import Volume, write_volume


def reference_volume() -> Volume:
    array = np.zeros((13, 16, 16), np.float32)
    array[:, 3:13, 3:13] = 100.0
    return Volume(array, (1.0, 1.0, 1.0), np.array([5.0, 0.0, -2.0]))


def test_known_psnr_and_perfect_ssim() -> None:
    reference = reference_volume()
    reference.array[:, 3:13, 3:13] += np.linspace(0, 50, 10, dtype=np.float32)[None, None, :]  # 100 .. 150
    mask = reference.array > 0
    perfect = compare(reference, reference)
    assert math.isinf(perfect["psnr_all"]) and perfect["ssim_all"] == pytest.approx(1.0)
    checker = np.where(np.indices(reference.shape).sum(0) % 2 == 0, 5.0, -5.0).astype(np.float32)
    noisy = reference.with_array(reference.array + np.where(mask, checker, 0))
    data_range = float(np.percentile(reference.array[mask], 99.9) - 100.0)
    result = compare(noisy, reference)
    assert result["data_range"] == pytest.approx(data_range, rel=1e-5)
    assert result["psnr_all"] == pytest.approx(10 * np.log10(data_range ** 2 / 25.0), abs=1e-3)
    assert result["ssim_all"] < 1.0


def test_matching_by_physical_position() -> None:
    reference = reference_volume()
    shifted = Volume(reference.array[3:], reference.spacing, reference.index_to_world([3, 0, 0]))
    result = compare(shifted, reference)  # a prediction covering only part of the reference, same values
    assert math.isinf(result["psnr_all"])
    assert result["voxels_compared"] == int((reference.array[3:] > 5).sum())


def test_synthesised_slices_between_inputs() -> None:
    reference = reference_volume()
    low = Volume(reference.array[::4], (4.0, 1.0, 1.0), reference.origin)
    synthetic = synthesised_slices(reference, 0, input_slice_positions(low, 0))
    assert list(np.flatnonzero(~synthetic)) == [0, 4, 8, 12]


def test_linear_baseline_is_exact_on_linear_ramps() -> None:
    z = np.arange(13, dtype=np.float32)[:, None, None] * np.ones((1, 8, 8), np.float32)
    reference = Volume(10 + z, (1.0, 1.0, 1.0))
    low = Volume(reference.array[::4], (4.0, 1.0, 1.0))
    up = classic_upsample(low, 4.0, 0, "linear")
    assert up.shape == reference.shape and np.allclose(up.array, reference.array, atol=1e-4)


def test_isr_evaluate_cli(tmp_path: Path) -> None:
    reference = reference_volume()
    reference.array[:, 3:13, 3:13] += np.linspace(0, 50, 10, dtype=np.float32)[None, None, :]
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    write_volume(reference, tmp_path / "ref" / "a.nii.gz")
    write_volume(reference.with_array(reference.array * 1.01), tmp_path / "pred" / "a.nii.gz")
    done = subprocess.run([sys.executable, "-c", "from isrnet.cli.evaluate import main; main()", "-ref",
                           str(tmp_path / "ref"), "-pred", str(tmp_path / "pred")], capture_output=True, encoding="utf-8", errors="replace")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "pred" / "evaluation.json").read_text())
    assert summary["cases"] == 1 and summary["mean"]["psnr_all"] > 30
    assert (tmp_path / "pred" / "evaluation.csv").is_file()
    empty = subprocess.run([sys.executable, "-c", "from isrnet.cli.evaluate import main; main()", "-ref",
                            str(tmp_path / "ref"), "-pred", str(tmp_path / "nothing")], capture_output=True, encoding="utf-8", errors="replace")
    assert empty.returncode == 1 and "no such file" in empty.stderr


def run_benchmark(*arguments: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from isrnet.cli.benchmark import main; main()", *arguments],
                          capture_output=True, encoding="utf-8", errors="replace", env=env, timeout=300)


def tiny_benchmark_datasets(folders) -> dict:
    """Dataset007_Tiny (x4 thick slices of a smooth pattern, with its reference) and Dataset008_NoRef, planned."""
    import os

    from isrnet.acquisition import simulate_thick_slices
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in (21, 24, 24)], indexing="ij")
    truth = (100 * (1.2 + np.sin(6 * z + 3 * y) * np.cos(4 * x))).astype(np.float32)
    low, _ = simulate_thick_slices(truth, 0, 4, 4, "gaussian")
    folder = folders.raw / "Dataset007_Tiny"
    write_volume(Volume(low, (4.0, 1.0, 1.0)), folder / "imagesTr" / "c.nii.gz")
    write_volume(Volume(truth, (1.0, 1.0, 1.0)), folder / "referenceTr" / "c.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "Tiny", "file_ending": ".nii.gz",
                                                     "slice_thickness_mm": 4.0}))
    write_volume(Volume(low, (4.0, 1.0, 1.0)), folders.raw / "Dataset008_NoRef" / "imagesTr" / "c.nii.gz")
    (folders.raw / "Dataset008_NoRef" / "dataset.json").write_text('{"name": "NoRef", "file_ending": ".nii.gz"}')
    env = dict(os.environ)
    plan = subprocess.run([sys.executable, "-c", "from isrnet.cli.plan_and_preprocess import "
                           "main_plan_and_preprocess as m; m()", "-d", "7", "8"], capture_output=True, encoding="utf-8", errors="replace", env=env)
    assert plan.returncode == 0, plan.stderr
    return env


def test_isr_benchmark_tiny(tmp_path: Path, folders) -> None:
    env = tiny_benchmark_datasets(folders)
    no_reference = run_benchmark("-d", "8", "--no-upper-bound", env=env)
    assert no_reference.returncode == 1 and "referenceTr" in no_reference.stderr
    done = run_benchmark("-d", "7", "--no-upper-bound", env=env)
    assert done.returncode == 0, done.stderr
    output = folders.results / "Dataset007_Tiny" / "benchmark"
    summary = (output / "benchmark_summary.csv").read_text()
    assert "cubic B-spline" in summary and "windowed sinc" in summary
    assert (output / "qc_c.png").stat().st_size > 1000
    page = (output / "results.md").read_text(encoding="utf-8")
    assert "| cubic B-spline |" in page and "![QC figure](qc_c.png)" in page
    assert "isrnet shipped mrft weights (no fine-tuning)" in summary  # the shipped weights are benchmarked
    assert "isr_train 901 mrft" in page  # ... with where they came from


def test_isr_benchmark_ablation_trains_three_arms_once(tmp_path: Path, folders) -> None:
    env = tiny_benchmark_datasets(folders)
    arguments = ("-d", "7", "--no-upper-bound", "--classic", "cubic", "--ablation", "--budget-minutes", "0.02")
    done = run_benchmark(*arguments, env=env)
    assert done.returncode == 0, done.stderr
    results = folders.results / "Dataset007_Tiny"
    reference = json.loads((results / "ssft__from_video_mrft" / "debug.json").read_text())
    assert reference["config"]["budget_minutes"] == 0.02 and "mrft.pth" in reference["initial_weights"]
    for tag, start in (("scratch", "from scratch"), ("from_video", "-init")):
        debug = json.loads((results / f"ssft__{tag}" / "debug.json").read_text())
        assert debug["initial_weights"].startswith(start)
        assert debug["config"]["iterations"] == debug["iterations_done"] == reference["iterations_done"]
    assert "video.pth" in json.loads((results / "ssft__from_video" / "debug.json").read_text())["initial_weights"]
    ablation = (results / "benchmark" / "ablation.csv").read_text()
    for label in ("mrft alone", "ssft from scratch", "ssft from video,", "ssft from video+mrft"):
        assert label in ablation
    assert (results / "benchmark" / "ablation_curves.png").stat().st_size > 1000
    assert "![ablation learning curves](ablation_curves.png)" in (results / "benchmark" / "results.md").read_text(encoding="utf-8")
    again = run_benchmark(*arguments, env=env)  # existing arms are reused, not retrained
    assert again.returncode == 0 and again.stdout.count("ablation: reusing") == 3, again.stderr
    other = run_benchmark(*arguments[:-1], "0.5", env=env)
    assert other.returncode == 1 and "--budget-minutes 0.02" in other.stderr
