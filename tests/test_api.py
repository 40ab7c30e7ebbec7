"""The Python API under the commands: each entry point works without the CLI, on tiny data."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, read_volume, write_volumes
from training_support import SMALL_NETWORK, single_thread, spheres_phantom  # noqa: F401 (fixture)

PACKAGE = Path(__file__).resolve().parents[1] / "isrnet"
SMALL = {f"network.kwargs.{key}": value for key, value in SMALL_NETWORK.items()}
TINY_TRAINING = {"training.patch_size": 24, "training.batch_size": 2, "training.validation_every": 2, **SMALL}


def test_entry_points_import_and_nothing_below_the_cli_imports_it() -> None:
    done = subprocess.run([sys.executable, "-c", "from isrnet.training import run_training; from isrnet.inference "
                           "import predict_paths; from isrnet.benchmarking import run_benchmark; from "
                           "isrnet.experiment_planning import plan_and_preprocess"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.parent.name != "cli" and re.search(r"isrnet\.cli\b", path.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.fixture
def planned(folders, single_thread):
    """Dataset001_Spheres: two tiny 4 mm stacks with 1 mm references, planned and preprocessed via the API."""
    from isrnet.acquisition import simulate_thick_slices
    from isrnet.experiment_planning import PlanOptions, plan_and_preprocess
    folder = folders.raw / "Dataset001_Spheres"
    for case, seed in (("a", 0), ("b", 1)):
        fine = spheres_phantom((41, 40, 40), seed=seed, count=25)
        low, _ = simulate_thick_slices(fine, 0, 4.0, 4.0, "gaussian")
        write_volumes([Volume(low, (4.0, 1.0, 1.0))], folder / "imagesTr" / f"{case}.nii.gz")
        write_volumes([Volume(fine, (1.0, 1.0, 1.0))], folder / "referenceTr" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "Spheres", "file_ending": ".nii.gz"}))
    plans = plan_and_preprocess("1", PlanOptions(overrides=TINY_TRAINING), workers=1)
    return folders, plans


def _train(**options):
    from isrnet.training import TrainingOptions, run_training
    defaults = {"iterations": 3, "workers": 0, "from_scratch": True, "validation_batches": 1,
                "checkpoint_every_seconds": 0.0}
    return run_training("1", "ssft", TrainingOptions(**{**defaults, **options}))


def test_run_training_returns_the_run_with_its_record(planned) -> None:
    run = _train(tag="api", lr=5e-4)
    assert run.name == "ssft__api" and run.finished
    record = run.record()
    assert record.iterations_done == 3 and record.config["lr"] == 5e-4
    assert record.config["checkpoint_every_seconds"] == 0.0  # settable without monkeypatching the config
    assert (run.folder / "plans.json").is_file()
    with pytest.raises(IsrnetError, match="already holds a finished run"):
        _train(tag="api")


def test_run_training_refuses_a_wrong_stage_or_kind(planned) -> None:
    from isrnet.training import run_training
    with pytest.raises(IsrnetError, match="valid stages"):
        run_training("1", "supervised")  # the benchmark's upper bound is not a stage users train
    with pytest.raises(IsrnetError, match="kind 'hr_mr'"):
        run_training("1", "mrft")


def test_predict_paths_uses_the_plan_of_the_run(planned, tmp_path: Path) -> None:
    from isrnet.inference import PredictOptions, Predictor, predict_paths
    folders, _ = planned
    run = _train(plans_overrides={"cases.a.factor": 2.0})
    results = predict_paths(folders.raw / "Dataset001_Spheres" / "imagesTr", tmp_path / "out", run.folder,
                            PredictOptions())
    assert [r.failed for r in results] == [False, False]
    low = read_volume(folders.raw / "Dataset001_Spheres" / "imagesTr" / "a.nii.gz")
    out_a, out_b = read_volume(tmp_path / "out" / "a.nii.gz"), read_volume(tmp_path / "out" / "b.nii.gz")
    assert out_a.shape[0] == (low.shape[0] - 1) * 2 + 1  # the plan's factor for case a
    assert out_b.shape[0] == (low.shape[0] - 1) * 4 + 1  # the spacing's for b
    sidecar = json.loads((tmp_path / "out" / "a.json").read_text())
    assert sidecar["factor"] == pytest.approx(2.0)
    predictor = Predictor.from_run(run.folder)
    assert predictor.settings_for("a").factor == 2.0 and predictor.settings_for("zzz").factor is None
    with pytest.raises(IsrnetError, match="never overwrites"):
        predict_paths(tmp_path / "out", tmp_path / "out", run.folder)


def test_run_benchmark_returns_tables_and_models(planned) -> None:
    from isrnet.benchmarking import BenchmarkOptions, run_benchmark
    _train()
    result = run_benchmark("1", BenchmarkOptions(upper_bound=False, classic=("linear",)))
    assert set(result.summary.index) >= {"cubic B-spline", "linear", "isrnet ssft"}
    assert {model.role for model in result.models} >= {"run"}
    assert result.page.is_file() and (result.folder / "benchmark.csv").is_file()
    assert np.isfinite(result.summary.loc["isrnet ssft", "psnr_synth"])


def test_dataset_integrity(planned) -> None:
    from isrnet.datasets import verify_dataset_integrity
    folders, _ = planned
    assert verify_dataset_integrity("Dataset001_Spheres") == []
    references = folders.raw / "Dataset001_Spheres" / "referenceTr"
    (references / "a.nii.gz").rename(references / "c.nii.gz")
    with pytest.raises(IsrnetError, match="references without a matching image in imagesTr: c"):
        verify_dataset_integrity("Dataset001_Spheres")
    (references / "c.nii.gz").unlink()
    assert "no reference for a" in verify_dataset_integrity("Dataset001_Spheres")[0]


def test_raw_folder_may_move_after_planning(planned, tmp_path: Path, monkeypatch) -> None:
    from isrnet.experiment_planning import preprocess
    folders, _ = planned
    fingerprint = json.loads((folders.preprocessed / "Dataset001_Spheres" / "dataset_fingerprint.json").read_text())
    assert fingerprint["cases"]["a"]["file"] == "imagesTr/a.nii.gz"
    moved = tmp_path / "moved_raw"
    folders.raw.rename(moved)
    monkeypatch.setenv("isrnet_raw", str(moved))
    preprocess("1", workers=1)  # finds the images through the relative paths


def test_old_plans_file_names_the_removed_key(planned) -> None:
    from isrnet.experiment_planning import load_plans
    folders, typed = planned
    plans = typed.as_json()
    path = folders.preprocessed / "Dataset001_Spheres" / "plans.json"
    path.write_text(json.dumps({**plans, "preprocessor": "DefaultPreprocessor"}))
    with pytest.raises(IsrnetError, match=r"key 'preprocessor' no longer exists.*isr_plan_and_preprocess -d"):
        load_plans("Dataset001_Spheres")
    old_case = {**plans["cases"]["a"], "transpose_forward": [0, 1, 2]}
    path.write_text(json.dumps({**plans, "cases": {**plans["cases"], "a": old_case}}))
    with pytest.raises(IsrnetError, match="cases.\\*.transpose_forward"):
        load_plans("Dataset001_Spheres")


def test_progress_outside_a_terminal_is_a_line_every_ten_percent(capsys) -> None:
    from isrnet.utilities.progress import progress
    with progress(total=200, desc="ssft", unit="it") as bar:  # pytest's stderr is not a terminal
        for _ in range(200):
            bar.update(1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 10 and "\r" not in "".join(lines)
    assert lines[0].startswith("ssft:  10% (20/200 it)") and lines[-1].startswith("ssft: 100% (200/200 it)")


def test_preprocessing_is_the_path_prediction_takes(planned) -> None:
    """The network sees the same numbers for a case at training and at prediction time."""
    from isrnet.preprocessing.preprocessor import prepare_volume
    folders, _ = planned
    trained = np.load(folders.preprocessed / "Dataset001_Spheres" / "data" / "a.npy")
    volume = read_volume(folders.raw / "Dataset001_Spheres" / "imagesTr" / "a.nii.gz")
    predicted, inversion = prepare_volume(volume, 0)
    properties = json.loads((folders.preprocessed / "Dataset001_Spheres" / "properties" / "a.json").read_text())
    box = properties["crop_box"]
    np.testing.assert_array_equal(trained, predicted[:, box[1][0]:box[1][1], box[2][0]:box[2][1]])
    np.testing.assert_allclose(inversion.intensities(predicted), volume.array, rtol=1e-6, atol=1e-4)


def test_a_plan_for_one_device_trains_with_the_sizes_of_another() -> None:
    from isrnet.plans import Plans, TrainingPlan
    from isrnet.stages import DatasetKind
    from isrnet.training.run import sizes_for_device
    training = TrainingPlan(96, 8, 8.0, 2e-4, sizes_by_device={"cpu": {"patch_size": 96, "batch_size": 8},
                                                                "cuda": {"patch_size": 192, "batch_size": 48}})
    plans = Plans("Dataset001_X", DatasetKind.TARGET, "cpu", {}, "percentile_0.5_99.5", {}, {}, training, {})
    assert sizes_for_device(plans, "cpu") == {"patch_size": 96, "batch_size": 8}
    assert sizes_for_device(plans, "cuda") == {"patch_size": 192, "batch_size": 48}
    assert sizes_for_device(plans, "cuda", ["training.patch_size"]) == {"patch_size": 96, "batch_size": 48}
    plans.overrides = {"training.batch_size": 8}
    assert sizes_for_device(plans, "cuda") == {"patch_size": 192, "batch_size": 8}


def test_edge_cases_are_clear_errors_or_empty_results(planned, tmp_path: Path) -> None:
    from isrnet.inference import PredictOptions, predict_paths
    folders, _ = planned
    images = folders.raw / "Dataset001_Spheres" / "imagesTr"
    assert predict_paths(images, tmp_path / "out", None, PredictOptions(num_parts=4, part_id=3)) == []  # 2 inputs
    with pytest.raises(IsrnetError, match="skip every preprocessed case"):
        _train(plans_overrides={"cases.*.skip": True})


def test_training_options_render_the_equivalent_isr_train_command() -> None:
    import shlex

    from isrnet.cli.train import build_parser, options_from
    from isrnet.training import TrainingOptions
    options = TrainingOptions(iterations=40, from_scratch=True, tag="t", validation_batches=1,
                              plans_overrides={"sampler.pairs": "slices"})
    arguments = shlex.split(options.as_command("001", "ssft"))[1:]
    parsed = options_from(build_parser().parse_args(arguments), started=0.0)
    assert (parsed.iterations, parsed.from_scratch, parsed.tag) == (40, True, "t")
    assert parsed.plans_overrides == {"sampler.pairs": "slices", "training.validation_batches": 1}
