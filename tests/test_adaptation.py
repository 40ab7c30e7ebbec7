"""Patient-level adaptation (`isr_predict --adapt-iterations/--adapt-minutes`): each case fine-tunes its own copy."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isrnet.degradation import simulate_thick_slices
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


def _predict(scans: Path, output: Path, model: Path, processes: int = 1, **adaptation):
    from isrnet.inference import AdaptationOptions, PredictionSettings, PredictOptions, predict_paths
    options = PredictOptions(PredictionSettings(slice_thickness=4.0), processes=processes,
                             adaptation=AdaptationOptions(**{"workers": 0, "plans_overrides": TINY, **adaptation}))
    results = predict_paths(scans, output, model, options)
    assert not any(r.failed for r in results), [r.message for r in results]
    return {r.source.name.split(".")[0]: read_volume(r.output).array for r in results}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_adaptation_changes_the_weights_records_itself_and_leaves_inputs_alone(scans, small_model, tmp_path) -> None:
    before = _digests(scans)
    plain = _predict(scans, tmp_path / "plain", small_model, iterations=None)
    adapted = _predict(scans, tmp_path / "adapted", small_model, iterations=3, save=True)
    assert _digests(scans) == before
    start = load_checkpoint(small_model)["state_dict"]
    for case in ("p01", "p02"):
        record = json.loads((tmp_path / "adapted" / f"{case}.json").read_text())["adaptation"]
        assert record["iterations"] == 3 and record["fixed_iterations"] == 3 and record["seconds"] > 0
        assert record["kept"] in ("start", "fine-tuned") and record["start_weights"] == str(small_model)
        assert record["slice_profile"]["thickness_mm"] == 4.0
        saved = load_checkpoint(tmp_path / "adapted" / "adapted_weights" / f"{case}.pth")
        changed = any(not torch.equal(saved["state_dict"][k], start[k]) for k in start)
        assert changed == (record["kept"] == "fine-tuned")
        provenance = json.loads((tmp_path / "adapted" / "adapted_weights" / f"{case}.json").read_text())
        assert provenance["case"] == case and provenance["iterations"] == 3
        if record["kept"] == "fine-tuned":
            assert not np.allclose(adapted[case], plain[case])
    assert not (tmp_path / "plain" / "adapted_weights").exists()
    assert "adaptation" not in json.loads((tmp_path / "plain" / "p01.json").read_text())


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
    from isrnet.inference import AdaptationOptions
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
