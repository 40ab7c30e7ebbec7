"""Sharing models: isr_export_model / isr_install_model round trips, shipped-weights format, refusals."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import isrnet.pretrained
from isrnet.acquisition import simulate_thick_slices
from isrnet.imageio import Volume, read_volume, write_volumes
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.model_sharing.package import write_pretrained
from isrnet.utilities.files import load_json
from training_support import (isr_train, load, plan_and_preprocess, run_main,
                              single_thread,  # noqa: F401  (fixture)
                              small_plan_overrides, spheres_phantom, write_target)

pytestmark = pytest.mark.usefixtures("single_thread")

DATASET = "Dataset001_Spheres"


@pytest.fixture
def trained(folders, monkeypatch, capsys):
    """A tiny finished ssft run of Dataset001_Spheres (from scratch, small network)."""
    volume = simulate_thick_slices(spheres_phantom((40, 40, 40), seed=2), 0, 4, 4.0)[0]
    write_target(folders.raw, DATASET, {"case": volume})
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides())
    isr_train(monkeypatch, capsys, "1", "ssft", "--workers", "0", "--from-scratch", "--iterations", "4")
    folders.run = folders.results / DATASET / "ssft"
    return folders


def export(monkeypatch, capsys, *args):
    from isrnet.cli.model_sharing import main_export
    return run_main(main_export, "isr_export_model", args, monkeypatch, capsys)


def install(monkeypatch, capsys, *args):
    from isrnet.cli.model_sharing import main_install
    return run_main(main_install, "isr_install_model", args, monkeypatch, capsys)


def predict(monkeypatch, capsys, *args):
    from isrnet.cli.predict import main
    return run_main(main, "isr_predict", args, monkeypatch, capsys)


def elsewhere(tmp_path: Path, monkeypatch) -> Path:
    """Point isrnet at a second, empty set of folders (a colleague's machine)."""
    root = tmp_path / "colleague"
    for name in ("raw", "preprocessed", "results"):
        (root / name).mkdir(parents=True)
        monkeypatch.setenv(f"isrnet_{name}", str(root / name))
    return root


def test_export_then_install_elsewhere_predicts_the_same(trained, tmp_path, monkeypatch, capsys) -> None:
    archive = tmp_path / "shared" / "spheres.zip"
    result = export(monkeypatch, capsys, "1", "-o", str(archive))
    assert result.code == 0, result.err
    with zipfile.ZipFile(archive) as content:
        assert set(content.namelist()) == {"manifest.json", "checkpoint_final.pth", "plans.json", "provenance.json",
                                           "progress.png"}
        manifest = json.loads(content.read("manifest.json"))
        provenance = json.loads(content.read("provenance.json"))
        weights = content.read("checkpoint_final.pth")
        content_plans = content.read("plans.json")
    assert (manifest["dataset"], manifest["run"], manifest["stage"]) == (DATASET, "ssft", "ssft")
    assert provenance["command"].startswith("isr_train 1 ssft") and provenance["iterations"] == 4
    assert provenance["dataset"]["name"] == DATASET and provenance["dataset"]["cases"] == 1  # no case names
    assert json.loads(content_plans)["cases"] == {} and json.loads(content_plans)["dataset"] == DATASET
    assert "git_commit" in provenance and provenance["validation"]["final"]["iteration"] == 4
    assert len(weights) < 0.5 * (trained.run / "checkpoint_final.pth").stat().st_size  # no optimizer state

    source = read_volume(next((trained.raw / DATASET / "imagesTr").iterdir()))
    expected = Predictor.from_checkpoint(trained.run / "checkpoint_final.pth").predict(source, PredictionSettings())

    root = elsewhere(tmp_path, monkeypatch)
    result = install(monkeypatch, capsys, str(archive))
    assert result.code == 0, result.err
    installed = root / "results" / DATASET / "ssft"
    assert {p.name for p in installed.iterdir()} == {"checkpoint_final.pth", "plans.json", "provenance.json",
                                                     "progress.png"}
    assert "isr_train 1 ssft" in result.err and "-d 001" in result.err
    write_volumes([source], tmp_path / "in" / "case.nii.gz")
    result = predict(monkeypatch, capsys, "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-d", "1")
    assert result.code == 0, result.err
    assert f"{DATASET}/ssft" in result.err
    output = read_volume(tmp_path / "out" / "case.nii.gz")
    np.testing.assert_allclose(output.array, expected.array, atol=1e-4)
    np.testing.assert_allclose(output.spacing, expected.spacing)


def test_install_refuses_to_overwrite_and_clashing_ids(trained, tmp_path, monkeypatch, capsys) -> None:
    assert export(monkeypatch, capsys, DATASET, "ssft", "-o", f"{tmp_path / 'outbox'}/").code == 0  # a new folder
    archive = tmp_path / "outbox" / f"{DATASET}__ssft.zip"
    assert archive.is_file()
    root = elsewhere(tmp_path, monkeypatch)
    assert install(monkeypatch, capsys, str(archive)).code == 0
    result = install(monkeypatch, capsys, str(archive))
    assert result.code == 1 and "already exists" in result.error and "--overwrite" in result.error
    assert install(monkeypatch, capsys, str(archive), "--overwrite").code == 0
    assert not [p for p in (root / "results" / DATASET).iterdir() if "partial" in p.name]

    (root / "raw" / "Dataset001_Knee").mkdir()  # the colleague already has a dataset 001
    result = install(monkeypatch, capsys, str(archive), "--overwrite")
    assert result.code == 1 and "Dataset001_Knee" in result.error and "--as" in result.error
    result = install(monkeypatch, capsys, str(archive), "--as", "Dataset042_Spheres")
    assert result.code == 0, result.err
    installed = root / "results" / "Dataset042_Spheres" / "ssft"
    assert load_json(installed / "plans.json")["dataset"] == "Dataset042_Spheres"
    assert load_json(installed / "provenance.json")["installed_from"]["as"] == "Dataset042_Spheres"


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "edited member", "missing member", "run outside",
                                    "wrong shapes", "manifest not json"])
def test_damaged_archives_are_refused_before_anything_is_written(trained, tmp_path, monkeypatch, capsys,
                                                                 damage) -> None:
    archive = tmp_path / "spheres.zip"
    assert export(monkeypatch, capsys, "1", "-o", str(archive)).code == 0
    data = archive.read_bytes()
    if damage == "truncated":
        archive.write_bytes(data[: len(data) // 2])
    elif damage == "not a zip":
        archive.write_text("hello")
    else:
        with zipfile.ZipFile(archive) as original:
            members = {name: original.read(name) for name in original.namelist()}
        manifest = json.loads(members["manifest.json"])
        if damage == "edited member":
            members["plans.json"] = members["plans.json"].replace(b"Spheres", b"Spherez")
        elif damage == "missing member":
            del members["checkpoint_final.pth"]
        elif damage == "manifest not json":
            members["manifest.json"] = b"{not json"
        else:  # made on purpose: the manifest's checksums are recomputed, so only the content checks can object
            if damage == "run outside":
                manifest["run"] = "../../outside"
            else:
                checkpoint = torch.load(io.BytesIO(members["checkpoint_final.pth"]), weights_only=True)
                name = next(iter(checkpoint["state_dict"]))
                checkpoint["state_dict"][name] = torch.zeros(3, 3)
                buffer = io.BytesIO()
                torch.save(checkpoint, buffer)
                members["checkpoint_final.pth"] = buffer.getvalue()
            manifest["sha256"] = {k: hashlib.sha256(v).hexdigest() for k, v in members.items() if k != "manifest.json"}
            members["manifest.json"] = json.dumps(manifest).encode()
        with zipfile.ZipFile(archive, "w") as rewritten:
            for name, content in members.items():
                rewritten.writestr(name, content)
    root = elsewhere(tmp_path, monkeypatch)
    result = install(monkeypatch, capsys, str(archive))
    assert result.code == 1 and "Traceback" not in result.err
    expected = {"truncated": "not a readable zip", "not a zip": "not a readable zip",
                "edited member": "plans.json does not match its checksum",
                "missing member": "lacks checkpoint_final.pth", "run outside": "no valid run",
                "wrong shapes": "do not load into the network", "manifest not json": "not valid JSON"}[damage]
    assert expected in result.error
    assert not any((root / "results").iterdir()) and not (root.parent / "outside").exists()


def test_export_of_an_unfinished_or_missing_run_says_why(trained, tmp_path, monkeypatch, capsys) -> None:
    (trained.run / "checkpoint_final.pth").unlink()
    result = export(monkeypatch, capsys, "1", "ssft", "-o", str(tmp_path / "x.zip"))
    assert result.code == 1 and "no checkpoint_final.pth" in result.error and "--c" in result.error
    result = export(monkeypatch, capsys, "1", "mrft", "-o", str(tmp_path / "x.zip"))
    assert result.code == 1 and "no trained model for stage mrft" in result.error
    result = export(monkeypatch, capsys, "1", "--tag", "x")
    assert result.code == 1 and "--tag goes with a stage" in result.error
    assert not (tmp_path / "x.zip").exists()


def test_shipped_weights_are_used_and_named(trained, tmp_path, monkeypatch, capsys) -> None:
    """Weights written in the shipped format start ssft on a new dataset and serve isr_predict without -d/-m."""
    shipped = tmp_path / "pretrained"
    weights, record = write_pretrained(trained.run, shipped)
    provenance = load_json(record)
    assert provenance["file"]["bytes"] == weights.stat().st_size and provenance["stage"] == "ssft"
    slim = torch.load(weights, weights_only=True)  # plain data only: loadable without trusting pickles
    assert "optimizer" not in slim and set(slim["history"]) == {"validation"}
    # ship them as the "mrft" weights of this installation
    weights.rename(shipped / "mrft.pth")
    record.rename(shipped / "mrft.json")
    monkeypatch.setattr(isrnet.pretrained, "FOLDER", shipped)

    volume = simulate_thick_slices(spheres_phantom((40, 40, 40), seed=3), 0, 4, 4.0)[0]
    write_target(trained.raw, "Dataset002_Other", {"other": volume})
    plan_and_preprocess(monkeypatch, capsys, "-d", "2", "--set", *small_plan_overrides())
    result = isr_train(monkeypatch, capsys, "2", "ssft", "--workers", "0", "--iterations", "2")
    assert "initial weights: shipped mrft weights" in result.out
    run = trained.results / "Dataset002_Other" / "ssft"
    assert load(run / "checkpoint_final.pth")["iteration"] == 2
    archive = tmp_path / "other.zip"
    assert export(monkeypatch, capsys, "2", "-o", str(archive)).code == 0
    with zipfile.ZipFile(archive) as content:
        chain = json.loads(content.read("provenance.json"))
    assert chain["initialised_from"]["stage"] == "ssft" and chain["initialised_from"]["dataset"]["name"] == DATASET

    write_volumes([Volume(volume, (4.0, 1.0, 1.0))], tmp_path / "in" / "other.nii.gz")
    result = predict(monkeypatch, capsys, "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert "model shipped mrft weights (isrnet/pretrained/mrft.pth: trained on Dataset001_Spheres, 4 " \
           "iterations" in result.err
    assert read_volume(tmp_path / "out" / "other.nii.gz").array.shape[0] > volume.shape[0]


EARLIER_ARCHIVE = Path(__file__).parent / "data" / "spheres_ssft_3cd1c9b.zip"


def test_archive_of_an_earlier_version_installs_and_predicts_the_same(folders, monkeypatch, capsys) -> None:
    """An archive isr_export_model wrote before plans were typed (plans format 3) installs, its plans are migrated,
    and it predicts what the version that wrote it predicted."""
    result = install(monkeypatch, capsys, str(EARLIER_ARCHIVE))
    assert result.code == 0, result.err
    run = folders.results / DATASET / "ssft"
    volume = simulate_thick_slices(spheres_phantom((40, 40, 40), seed=2), 0, 4, 4.0)[0]
    predictor = Predictor.from_run(run)
    out, spacing = predictor.predict_array(volume[2:8, 8:32, 8:32], (4.0, 1.0, 1.0),
                                           PredictionSettings(factor=4.0, thickness_mm=4.0))
    expected = np.load(EARLIER_ARCHIVE.with_name("spheres_ssft_3cd1c9b_prediction.npz"))["prediction"]
    assert spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4 * float(np.abs(expected).max()))
