"""Dataset ID resolution, dataset.json, case listing, and the lazily read folders of paths.py."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import make_volume
from isrnet import datasets, paths
from isrnet.errors import IsrnetError


def _folders(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir(parents=True)


# --- dataset IDs -------------------------------------------------------------------------------

@pytest.mark.parametrize("identifier", ["1", "001", 1, " 1 ", "Dataset001_Brain"])
def test_id_forms_resolve(folders: SimpleNamespace, identifier: str | int) -> None:
    _folders(folders.raw, "Dataset001_Brain", "Dataset012_Knee")
    assert datasets.resolve_dataset(identifier) == "Dataset001_Brain"
    assert datasets.resolve_dataset("12") == "Dataset012_Knee"


def test_dataset_only_in_preprocessed_or_results_resolves(folders: SimpleNamespace) -> None:
    _folders(folders.preprocessed, "Dataset005_Pre")
    _folders(folders.results, "Dataset006_Res")
    assert datasets.resolve_dataset("5") == "Dataset005_Pre"
    assert datasets.resolve_dataset("006") == "Dataset006_Res"


@pytest.mark.parametrize("identifier", ["7", "007", "Dataset007_Other", "brain"])
def test_unknown_id_lists_existing_datasets(folders: SimpleNamespace, identifier: str) -> None:
    _folders(folders.raw, "Dataset001_Brain", "Dataset012_Knee")
    (folders.raw / "not_a_dataset").mkdir()
    with pytest.raises(IsrnetError) as error:
        datasets.resolve_dataset(identifier)
    assert "Dataset001_Brain, Dataset012_Knee" in str(error.value)
    assert "not_a_dataset" not in str(error.value)


def test_unknown_id_without_any_dataset_names_the_raw_folder(folders: SimpleNamespace) -> None:
    with pytest.raises(IsrnetError, match="none") as error:
        datasets.resolve_dataset("1")
    assert str(folders.raw) in str(error.value)


def test_ambiguous_id_is_an_error(folders: SimpleNamespace) -> None:
    _folders(folders.raw, "Dataset001_A")
    _folders(folders.preprocessed, "Dataset001_B")
    with pytest.raises(IsrnetError, match="ambiguous") as error:
        datasets.resolve_dataset("001")
    assert "Dataset001_A" in str(error.value) and "Dataset001_B" in str(error.value)
    assert datasets.resolve_dataset("Dataset001_B") == "Dataset001_B"  # the full name still works


# --- dataset.json and cases --------------------------------------------------------------------

def test_dataset_json_is_read(make_dataset) -> None:
    folder = make_dataset(info={"name": "Test", "file_ending": ".nii.gz", "kind": "hr_mr",
                                "slice_thickness_mm": {"a": 2}, "channel_names": {"0": "T1"}})
    info = datasets.load_dataset_info(folder)
    assert (info.name, info.kind, info.thickness_for("a"), info.thickness_for("b")) == ("Test", "hr_mr", 2.0, None)
    assert info.extra == {"channel_names": {"0": "T1"}}


@pytest.mark.parametrize("content, message", [
    (None, "missing"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ({"name": "Test"}, "'file_ending'"),
    ({"name": "Test", "file_ending": ".nii.gz", "kind": "ct"}, "kind 'ct'"),
    ({"name": "Test", "file_ending": ".nii.gz", "slice_thickness_mm": "3"}, "slice_thickness_mm"),
])
def test_bad_dataset_json_names_the_file(make_dataset, content, message: str) -> None:
    folder = make_dataset(info=content)
    with pytest.raises(IsrnetError, match=message) as error:
        datasets.load_dataset_info(folder)
    assert str(folder / "dataset.json") in str(error.value)


def test_cases_drop_channel_suffix_and_ignore_other_files(make_dataset) -> None:
    folder = make_dataset(cases={"a_0000": make_volume((4, 6, 6), (3, 1, 1)), "b": make_volume((4, 6, 6), (3, 1, 1))})
    (folder / "imagesTr" / "notes.txt").write_text("x")
    (folder / "imagesTr" / ".hidden.nii.gz").write_bytes(b"")
    info, cases = datasets.training_cases(folder.name)
    assert sorted(cases) == ["a", "b"]
    assert cases["a"].name == "a_0000.nii.gz"


def test_duplicate_case_names_are_an_error(make_dataset) -> None:
    folder = make_dataset(cases={"a": make_volume((4, 6, 6), (3, 1, 1))})
    (folder / "imagesTr" / "a_0000.nii.gz").write_bytes((folder / "imagesTr" / "a.nii.gz").read_bytes())
    with pytest.raises(IsrnetError, match="two entries give case 'a'"):
        datasets.list_cases(folder / "imagesTr")


def test_empty_or_missing_dataset_is_an_error(folders: SimpleNamespace, make_dataset) -> None:
    make_dataset()
    with pytest.raises(IsrnetError, match="holds no images"):
        datasets.training_cases("Dataset001_Test")
    with pytest.raises(IsrnetError, match="does not exist"):
        datasets.raw_dataset_folder("Dataset002_Missing")


# --- paths -------------------------------------------------------------------------------------

def test_import_prints_nothing_without_variables(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("isrnet_")}
    result = subprocess.run([sys.executable, "-c", "import isrnet, isrnet.paths, isrnet.datasets, "
                             "isrnet.cli.plan_and_preprocess"],
                            cwd=tmp_path, env=environment, capture_output=True, encoding="utf-8", errors="replace",
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert not (tmp_path / "isrnet_data").exists()


def test_fallback_notice_is_printed_once_per_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("isrnet_raw", "isrnet_preprocessed", "isrnet_results"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(paths, "_noticed", set())
    assert capsys.readouterr().err == ""
    assert paths.raw_folder() == (tmp_path / "isrnet_data" / "raw").resolve()
    assert paths.raw_folder() == (tmp_path / "isrnet_data" / "raw").resolve()
    err = capsys.readouterr().err
    assert err.count("$isrnet_raw is not set") == 1 and err.count("\n") == 1
    paths.results_folder()
    assert capsys.readouterr().err.count("$isrnet_results is not set") == 1
    paths.raw_folder()
    assert capsys.readouterr().err == ""


def test_set_variables_are_used_silently(folders: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    assert paths.raw_folder() == folders.raw
    assert paths.preprocessed_folder() == folders.preprocessed
    assert paths.results_folder() == folders.results
    assert capsys.readouterr().err == ""


def test_paths_reload_reads_nothing_at_import(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for variable in ("isrnet_raw", "isrnet_preprocessed", "isrnet_results"):
        monkeypatch.delenv(variable, raising=False)
    importlib.reload(paths)
    assert capsys.readouterr().err == ""
