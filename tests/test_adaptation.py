"""Patient-level adaptation (`isr_predict --adapt-iterations/--adapt-minutes`): each case fine-tunes its own copy."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isrnet.acquisition import simulate_thick_slices
from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, read_volume, write_volumes
from isrnet.training.checkpointing import load_checkpoint
from training_support import single_thread, spheres_phantom  # noqa: F401 (fixture)

TINY = {"training.patch_size": 24, "training.batch_size": 2, "training.validation_batches": 1,
        "training.validation_every": 2}


@pytest.fixture
def scans(tmp_path: Path, single_thread) -> Path:
    """Two tiny 4 mm stacks (different phantoms) in tmp_path/scans."""
    folder = tmp_path / "scans"
    for case, seed in (("p01", 0), ("p02", 1)):
        low, _ = simulate_thick_slices(spheres_phantom((41, 32, 32), seed=seed, count=20), 0, 4.0, 4.0, "gaussian")
        write_volumes([Volume(low, (4.0, 1.0, 1.0))], folder / f"{case}.nii.gz")
    return folder


def _predict(scans: Path, output: Path, model: Path, processes: int = 1, lr: float | None = None, **adaptation):
    from isrnet.inference import PredictionSettings, PredictOptions, predict_paths
    from isrnet.training import AdaptationOptions
    overrides = {**TINY, **({"training.lr": lr} if lr is not None else {})}
    options = PredictOptions(PredictionSettings(thickness_mm=4.0), processes=processes,
                             adaptation=AdaptationOptions(**{"workers": 0, "plans_overrides": overrides, **adaptation}))
    results = predict_paths(scans, output, model, options)
    assert not any(r.failed for r in results), [r.message for r in results]
    return {r.source.name.split(".")[0]: read_volume(r.output).array for r in results}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _adapted_record(output: Path, case: str, model: Path, iterations: int) -> tuple[dict, bool]:
    """The sidecar's adaptation record of `case` (checked) and whether the saved weights differ from the start."""
    record = json.loads((output / f"{case}.json").read_text())["adaptation"]
    assert record["iterations"] == iterations and record["fixed_iterations"] == iterations and record["seconds"] > 0
    assert record["start_weights"] == str(model) and record["slice_profile"]["thickness_mm"] == 4.0
    provenance = json.loads((output / "adapted_weights" / f"{case}.json").read_text())
    assert provenance["case"] == case and provenance["iterations"] == iterations
    start = load_checkpoint(model)["state_dict"]
    saved = load_checkpoint(output / "adapted_weights" / f"{case}.pth")["state_dict"]
    return record, any(not torch.equal(saved[key], start[key]) for key in start)


def test_the_guard_keeps_fine_tuning_that_improves_a_poor_start(scans, small_model, tmp_path) -> None:
    """From random weights, a dozen iterations at a fine-tuning rate improve the held-out pairs of the case: the
    guard keeps the fine-tuned weights, they are saved, and the prediction changes. Inputs stay untouched."""
    before = _digests(scans)
    plain = _predict(scans / "p01.nii.gz", tmp_path / "plain", small_model)
    adapted = _predict(scans / "p01.nii.gz", tmp_path / "adapted", small_model, lr=2e-3, iterations=12, save=True)
    assert _digests(scans) == before
    record, changed = _adapted_record(tmp_path / "adapted", "p01", small_model, 12)
    assert record["kept"] == "fine-tuned" and record["guard"]["final_psnr"] >= record["guard"]["start_psnr"]
    assert changed and not np.allclose(adapted["p01"], plain["p01"])
    assert not (tmp_path / "plain" / "adapted_weights").exists()
    assert "adaptation" not in json.loads((tmp_path / "plain" / "p01.json").read_text())


def test_the_guard_keeps_the_start_when_fine_tuning_makes_it_worse(scans, small_model, tmp_path) -> None:
    """At a learning rate far too high, fine-tuning wrecks the weights on the case's held-out pairs: the guard keeps
    the starting weights, they are what is saved, and the prediction is the plain one."""
    plain = _predict(scans / "p02.nii.gz", tmp_path / "plain", small_model)
    adapted = _predict(scans / "p02.nii.gz", tmp_path / "adapted", small_model, lr=50.0, iterations=3, save=True)
    record, changed = _adapted_record(tmp_path / "adapted", "p02", small_model, 3)
    assert record["kept"] == "start" and record["guard"]["final_psnr"] < record["guard"]["start_psnr"]
    assert not changed
    np.testing.assert_allclose(adapted["p02"], plain["p02"], atol=1e-5 * float(np.abs(plain["p02"]).max()))


def test_saved_weights_reload_with_m_and_predict_the_same(scans, small_model, tmp_path) -> None:
    adapted = _predict(scans, tmp_path / "adapted", small_model, iterations=2, save=True)
    weights = tmp_path / "adapted" / "adapted_weights" / "p01.pth"
    again = _predict(scans / "p01.nii.gz", tmp_path / "again", weights, iterations=None)
    np.testing.assert_allclose(again["p01"], adapted["p01"], atol=1e-4)


def test_processes_give_the_same_result_as_serial(scans, small_model, tmp_path) -> None:
    serial = _predict(scans, tmp_path / "serial", small_model, iterations=2)
    pooled = _predict(scans, tmp_path / "pooled", small_model, processes=2, iterations=2)
    for case in serial:  # one torch thread per process vs the caller's: float sums may differ in the last bits
        np.testing.assert_allclose(pooled[case], serial[case], atol=1e-3 * float(np.abs(serial[case]).max()))


def test_a_budget_in_minutes_is_kept_per_case(scans, small_model, tmp_path) -> None:
    _predict(scans / "p01.nii.gz", tmp_path / "timed", small_model, minutes=0.25)
    record = json.loads((tmp_path / "timed" / "p01.json").read_text())["adaptation"]
    assert record["budget_minutes"] == 0.25 and record["iterations"] >= 1 and record["seconds"] <= 0.25 * 60 + 5


def test_bad_adaptation_options_are_clear_errors(monkeypatch, capsys, tmp_path) -> None:
    from isrnet.cli.predict import main
    from isrnet.training import AdaptationOptions
    with pytest.raises(IsrnetError, match="--save-adapted needs"):
        AdaptationOptions(save=True)
    with pytest.raises(IsrnetError, match="exclude each other"):
        AdaptationOptions(minutes=1, iterations=3)
    monkeypatch.setattr(sys, "argv", ["isr_predict", "-i", str(tmp_path), "-o", str(tmp_path / "o"), "--save-adapted"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and "--save-adapted needs --adapt-minutes" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["isr_predict", "-i", "x", "-o", "y", "--adapt-minutes", "1",
                                      "--adapt-iterations", "2"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_adaptation_skips_a_case_like_the_dataset_and_records_why(scans, folders, monkeypatch, capsys,
                                                                  tmp_path) -> None:
    """From a dataset's ssft run (two alike noise-free stacks), a case like them is not fine-tuned (the sidecar
    names the case it resembles and the prediction is the dataset model's own), while a noisy stack of the same
    anatomy is adapted because it is unlike every case the model was fine-tuned on (its noise, and with the little
    background these stacks have, the intensity distribution the noise gives it)."""
    from training_support import isr_train, plan_and_preprocess, small_plan_overrides, write_target
    write_target(folders.raw, "Dataset001_Alike", {case: read_volume(scans / f"{case}.nii.gz").array
                                                   for case in ("p01", "p02")})
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides())
    isr_train(monkeypatch, capsys, "1", "ssft", "--workers", "0", "--from-scratch", "--iterations", "4")
    model = folders.results / "Dataset001_Alike" / "ssft"
    clean = read_volume(scans / "p01.nii.gz").array
    rng = np.random.default_rng(3)
    sigma = 0.08 * float(clean.max())
    noisy = np.hypot(clean + rng.normal(0, sigma, clean.shape), rng.normal(0, sigma, clean.shape))
    cases = tmp_path / "cases"
    write_volumes([Volume(clean, (4.0, 1.0, 1.0))], cases / "alike.nii.gz")
    write_volumes([Volume(noisy.astype(np.float32), (4.0, 1.0, 1.0))], cases / "noisy.nii.gz")
    plain = _predict(cases / "alike.nii.gz", tmp_path / "plain", model)
    adapted = _predict(cases, tmp_path / "adapted", model, iterations=3, when="unlike")
    skipped = json.loads((tmp_path / "adapted" / "alike.json").read_text())["adaptation"]
    assert skipped["iterations"] == 0 and skipped["need"]["adapt"] is False, skipped
    assert skipped["need"]["nearest"] in ("p01", "p02") and "like p0" in skipped["skipped"], skipped
    np.testing.assert_array_equal(adapted["alike"], plain["alike"])
    tuned = json.loads((tmp_path / "adapted" / "noisy.json").read_text())["adaptation"]
    assert tuned["need"]["adapt"] is True and tuned["iterations"] == 3, tuned
    assert set(tuned["need"]["unlike"]) & {"noise", "contrast"}, tuned  # the noise shows, on a background or not
    always = _predict(cases / "alike.nii.gz", tmp_path / "always", model, iterations=3)  # the default: always
    record = json.loads((tmp_path / "always" / "alike.json").read_text())["adaptation"]
    assert record["iterations"] == 3 and record["need"]["adapt"] is False and "skipped" not in record
    assert always["alike"].shape == plain["alike"].shape
