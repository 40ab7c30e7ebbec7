"""isr_bids: a BIDS tree in, BIDS derivatives out (the validator passes), sidecar thickness used and recorded,
re-runs write nothing, one broken scan does not stop the rest."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from isrnet.acquisition import simulate_thick_slices
from isrnet.acquisition.slice_profile import ProfileSource
from isrnet.errors import IsrnetError
from training_support import single_thread, spheres_phantom  # noqa: F401  (fixture)

SPACING = (1.0, 1.0, 4.0)  # x, y, z in mm: axial slices 4 mm apart
SCANS = {  # path -> (seed, the sidecar's SliceThickness or None)
    "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz": (0, 3.0),
    "sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz": (1, None),  # inherits T2w.json's 4.0 from the top level
    "sub-01/ses-2/anat/sub-01_ses-2_FLAIR.nii.gz": (2, None),  # no thickness anywhere: isrnet decides
    "sub-01/ses-2/anat/sub-01_ses-2_T2w.nii.gz": (3, 2.5),  # its own sidecar overrides the top level's
    "sub-02/anat/sub-02_T1w.nii.gz": (4, 4.0),
    "sub-02/anat/sub-02_FLAIR.nii.gz": (5, None),
}
BROKEN = "sub-02/anat/sub-02_T2w.nii.gz"  # a truncated file


def _write_scan(path: Path, seed: int, thickness: float | None) -> None:
    fine = spheres_phantom((40, 40, 40), seed=seed, count=20)
    thick, _ = simulate_thick_slices(fine, 0, 4.0, 4.0, "gaussian")  # slices along the first array axis
    image = nib.Nifti1Image(np.ascontiguousarray(np.moveaxis(thick, 0, -1)), np.diag([*SPACING, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    sidecar = {"EchoTime": 0.01, "RepetitionTime": 2.0, "MagneticFieldStrength": 3}
    if thickness is not None:
        sidecar["SliceThickness"] = thickness
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))


def write_tree(root: Path) -> Path:
    """Two subjects (one with two sessions), T1w, T2w and FLAIR; a top-level T2w.json; one broken scan."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny study", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    (root / "T2w.json").write_text(json.dumps({"SliceThickness": 4.0}))
    for relative, (seed, thickness) in SCANS.items():
        _write_scan(root / relative, seed, thickness)
    broken = root / BROKEN
    _write_scan(broken, 6, 4.0)
    broken.write_bytes(broken.read_bytes()[:200])
    return root


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tree and one participant-level run over it with the shipped weights."""
    import torch
    from isrnet.bids import run_participant
    root = write_tree(tmp_path_factory.mktemp("bids") / "study")
    output = root / "derivatives" / "isrnet"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcomes = run_participant(root, output, log=lambda message: None)
    finally:
        torch.set_num_threads(threads)
    return root, output, outcomes


def _derivative(output: Path, relative: str) -> Path:
    folder, name = Path(relative).parent, Path(relative).name
    base, suffix = name[: -len(".nii.gz")].rsplit("_", 1)
    return output / folder / f"{base}_desc-isr_{suffix}.nii.gz"


def test_every_scan_is_written_and_the_broken_one_is_listed_with_its_reason(study) -> None:
    _, output, outcomes = study
    status = {outcome.scan: outcome for outcome in outcomes}
    assert {scan for scan, o in status.items() if o.status == "written"} == set(SCANS)
    assert status[BROKEN].status == "failed" and "sub-02_T2w" in status[BROKEN].reason
    for relative in SCANS:
        image = nib.load(str(_derivative(output, relative)))
        assert image.shape[:2] == (40, 40) and image.shape[2] > 10  # the slice axis upsampled
        assert np.allclose(image.header.get_zooms()[:2], (1.0, 1.0))
    assert sorted((output / "logs").glob("participant_*.tsv"))


def test_every_sidecar_thickness_is_used_and_recorded(study) -> None:
    _, output, _ = study
    expected = {"sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz": 4.0}  # inherited from the top-level T2w.json
    expected.update({relative: thickness for relative, (_, thickness) in SCANS.items() if thickness is not None})
    for relative in SCANS:
        sidecar = json.loads(_derivative(output, relative).with_suffix("").with_suffix(".json").read_text())
        profile = sidecar["isrnet"]["slice_profile"]
        assert sidecar["Sources"] == [f"bids:raw:{relative}"]
        assert sidecar["RepetitionTime"] == 2.0 and "SliceThickness" not in sidecar  # kept / no longer holds
        if relative in expected:
            assert profile["thickness_mm"] == expected[relative]
            assert profile["thickness_source"] == ProfileSource.BIDS_SIDECAR.value
        else:
            assert profile["thickness_source"] != ProfileSource.BIDS_SIDECAR.value


def test_the_derivatives_pass_the_bids_validator(study) -> None:
    _, output, _ = study
    validator = shutil.which("bids-validator-deno", path=str(Path(sys.executable).parent))
    assert validator, "bids-validator-deno is missing: the test extras install it (pip install -e '.[test]')"
    done = subprocess.run([validator, "--json", str(output)], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    errors = [issue for issue in report["issues"]["issues"] if issue["severity"] == "error"]
    assert errors == [], errors


def test_a_second_run_writes_nothing(study) -> None:
    from isrnet.bids import run_participant
    root, output, _ = study
    images = sorted(output.glob("sub-*/**/*.nii.gz"))
    before = {path: path.stat().st_mtime_ns for path in images}
    outcomes = run_participant(root, output, log=lambda message: None)
    assert {o.scan for o in outcomes if o.status == "skipped"} == set(SCANS)
    assert [o.scan for o in outcomes if o.status == "failed"] == [BROKEN]  # tried again, still broken
    assert {path: path.stat().st_mtime_ns for path in sorted(output.glob("sub-*/**/*.nii.gz"))} == before


def test_group_level_writes_one_table_and_figure(study) -> None:
    from isrnet.bids import run_group
    _, output, _ = study
    summary = run_group(output, log=lambda message: None)
    assert len(summary.table) == len(SCANS) and summary.figure.is_file() and summary.tsv.is_file()
    assert set(summary.table.suffix) == {"T1w", "T2w", "FLAIR"}
    assert (summary.table.factor > 1).all()


def test_selection_by_participant_session_and_suffix(tmp_path) -> None:
    from isrnet.bids import Selection, find_scans
    root = write_tree(tmp_path / "study")
    found = find_scans(root, Selection(participants=("sub-01",), sessions=("2",), suffixes=("T2w", "FLAIR")))
    assert [str(scan.relative) for scan in found] == ["sub-01/ses-2/anat/sub-01_ses-2_FLAIR.nii.gz",
                                                      "sub-01/ses-2/anat/sub-01_ses-2_T2w.nii.gz"]
    assert found[1].metadata["SliceThickness"] == 2.5
    with pytest.raises(IsrnetError, match="--participant-label 03"):
        find_scans(root, Selection(participants=("03",)))


def test_an_implausible_sidecar_thickness_is_ignored_with_a_note(tmp_path) -> None:
    from isrnet.bids.derivatives import sidecar_thickness
    from isrnet.bids.layout import BidsScan
    scan = BidsScan(tmp_path / "sub-01_T2w.nii.gz", Path("sub-01/anat/sub-01_T2w.nii.gz"), {"suffix": "T2w"},
                    {"SliceThickness": 40.0, "SpacingBetweenSlices": 5.0})
    thickness, note = sidecar_thickness(scan, 4.0)
    assert thickness is None and "SliceThickness 40 mm ignored" in note and "SpacingBetweenSlices 5" in note


def test_train_first_trains_ssft_on_the_selected_scans_with_their_thickness(tmp_path, single_thread) -> None:
    from isrnet.bids import BidsOptions, Selection, run_participant
    from isrnet.bids.app import TRAINING_DATASET
    root = write_tree(tmp_path / "study")
    output = tmp_path / "derivatives"
    options = BidsOptions(Selection(participants=("01",), sessions=("1",)), train=True, train_iterations=2)
    outcomes = run_participant(root, output, options, log=lambda message: None)
    assert [o.status for o in outcomes] == ["written", "written"]
    declared = json.loads((output / "work" / "raw" / TRAINING_DATASET / "dataset.json").read_text())
    assert declared["slice_profile"] == {"sub-01_ses-1_T1w": {"thickness_mm": 3.0},
                                         "sub-01_ses-1_T2w": {"thickness_mm": 4.0}}
    sidecar = json.loads((output / "sub-01/ses-1/anat/sub-01_ses-1_desc-isr_T2w.json").read_text())
    assert TRAINING_DATASET in sidecar["isrnet"]["model"]


@pytest.mark.parametrize("problem", ["no dataset_description.json", "output is the input"])
def test_the_command_says_in_one_line_what_is_wrong(tmp_path, problem) -> None:
    root = write_tree(tmp_path / "study")
    output = tmp_path / "out"
    if problem.startswith("no dataset"):
        (root / "dataset_description.json").unlink()
    else:
        output = root
    done = subprocess.run([sys.executable, "-c", "from isrnet.cli.bids import main; main()", str(root), str(output), "participant"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "isr_bids: error:" in done.stderr


def test_evaluate_adds_each_scans_hidden_slice_gain(tmp_path, single_thread) -> None:
    from isrnet.bids import BidsOptions, Selection, run_group, run_participant
    root = write_tree(tmp_path / "study")
    output = tmp_path / "derivatives"
    options = BidsOptions(Selection(participants=("02",), suffixes=("T1w",)), evaluate=True)
    outcomes = run_participant(root, output, options, log=lambda message: None)
    assert [o.status for o in outcomes] == ["written"]
    record = json.loads((output / "sub-02/anat/sub-02_desc-isr_T1w.json").read_text())["isrnet"]
    assert np.isfinite(record["hidden_slice_gain_dB"]) and (output / record["hidden_slice_page"]).is_file()
    assert run_group(output, log=lambda message: None).table.hidden_slice_gain_dB.notna().all()


def test_func_and_dwi_time_series_keep_their_repetition_time_and_gradient_table(tmp_path) -> None:
    """A 4D bold and dwi scan: the derivative keeps the frames and the NIfTI header's repetition time, a dwi
    derivative gets its (inherited) .bval/.bvec beside it, and the validator passes."""
    from isrnet.bids import BidsOptions, Selection, run_participant
    root = tmp_path / "study"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny 4D study", "BIDSVersion": "1.10.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    (root / "dwi.bval").write_text("0 1000 1000\n")  # top level: inherited by the dwi scan
    (root / "dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")
    for relative, tr, sidecar in (("sub-01/func/sub-01_task-rest_bold.nii.gz", 2.0, {"TaskName": "rest"}),
                                  ("sub-01/dwi/sub-01_dwi.nii.gz", 3.5, {})):
        frames = [simulate_thick_slices(spheres_phantom((40, 40, 40), seed=seed, count=20), 0, 4.0, 4.0,
                                        "gaussian")[0] for seed in range(3)]
        data = np.stack([np.moveaxis(frame, 0, -1) for frame in frames], axis=-1).astype(np.float32)
        image = nib.Nifti1Image(data, np.diag([*SPACING, 1.0]))
        image.header.set_xyzt_units("mm", "sec")
        image.header["pixdim"][4] = tr
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, str(path))
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": tr, "EchoTime": 0.03, "SliceThickness": 4.0, **sidecar}))
    output = root / "derivatives" / "isrnet"
    outcomes = run_participant(root, output, BidsOptions(Selection(datatypes=("func", "dwi"))),
                               log=lambda message: None)
    assert [o.status for o in outcomes] == ["written", "written"], [o.reason for o in outcomes]
    for relative, tr in (("sub-01/func/sub-01_task-rest_bold.nii.gz", 2.0), ("sub-01/dwi/sub-01_dwi.nii.gz", 3.5)):
        header = nib.load(str(_derivative(output, relative))).header
        assert header["dim"][4] == 3 and header["pixdim"][4] == pytest.approx(tr)
        assert header.get_xyzt_units() == ("mm", "sec")
    assert (output / "sub-01/dwi/sub-01_desc-isr_dwi.bval").read_text() == "0 1000 1000\n"
    assert (output / "sub-01/dwi/sub-01_desc-isr_dwi.bvec").is_file()
    validator = shutil.which("bids-validator-deno", path=str(Path(sys.executable).parent))
    done = subprocess.run([validator, "--json", str(output)], capture_output=True, text=True, timeout=300)
    errors = [issue for issue in json.loads(done.stdout)["issues"]["issues"] if issue["severity"] == "error"]
    assert errors == [], errors
