"""isr_predict --output-format dicom: a derived series that SimpleITK and dcm2niix read back with the geometry and
intensities of the NIfTI output; new UIDs; identity copied from the source series, or dropped with --anonymise."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.imageio import read_volume, write_volume
from isrnet.imageio.volume import Volume
from isrnet.networks import build_network
from isrnet.training.checkpointing import save_checkpoint
from tests.conftest import rotation

IDENTITY = {"0010|0010": "Doe^Jane", "0010|0020": "PAT-0042", "0010|0030": "19700101", "0010|0040": "F",
            "0020|000d": "1.2.826.0.1.3680043.8.498.77.1", "0008|0020": "20260315", "0008|0030": "101500",
            "0008|0050": "ACC123", "0008|0080": "Example Hospital", "0008|103e": "T2 TSE ax", "0020|0011": "7",
            "0008|0070": "ExampleVendor"}
DIRECTION = rotation(0.35, 0.2, -0.15)  # an oblique acquisition (columns: row, column, normal directions)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An untrained network (exactly cubic interpolation)."""
    torch.manual_seed(0)
    path = tmp_path / "model" / "checkpoint_final.pth"
    path.parent.mkdir()
    save_checkpoint({"network": DEFAULT_NETWORK, "state_dict": build_network(DEFAULT_NETWORK).state_dict()}, path)
    return path


def write_series(folder: Path, array: np.ndarray, pixel: float = 0.8, spacing: float = 4.0,
                 origin=(-60.0, -45.0, 12.0)) -> None:
    """An oblique scanner-like series: one file per slice along DIRECTION's third column, with identity tags."""
    folder.mkdir(parents=True)
    row, column, normal = DIRECTION[:, 0], DIRECTION[:, 1], np.cross(DIRECTION[:, 0], DIRECTION[:, 1])
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid = "1.2.826.0.1.3680043.8.498.77"
    for k in range(array.shape[0]):
        item = sitk.GetImageFromArray(array[k].astype(np.int16))
        item.SetSpacing((pixel, pixel))
        position = np.asarray(origin) + k * spacing * normal
        tags = {**IDENTITY, "0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
                "0008|0018": f"{uid}.3.{k + 1}", "0020|000e": f"{uid}.2", "0020|0052": f"{uid}.4",
                "0020|0037": "\\".join(f"{v:.8f}" for v in (*row, *column)),
                "0020|0032": "\\".join(f"{p:.5f}" for p in position), "0020|0013": str(k + 1),
                "0018|0050": f"{spacing:g}", "0018|0088": f"{spacing:g}"}
        for tag, value in tags.items():
            item.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(item)


def phantom(shape=(7, 22, 20)) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    return 100 + 800 * np.sin(2 * z + 3 * y) ** 2 * np.cos(2 * x) ** 2


def predict(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from isrnet.cli.predict import main; main()", *arguments],
                          capture_output=True, text=True, encoding="utf-8")


@pytest.fixture
def series_and_outputs(tmp_path: Path, checkpoint: Path) -> tuple[Path, Path, Path]:
    """(input series, NIfTI output, DICOM output folder) of the same prediction."""
    source = tmp_path / "dicom" / "t2_ax"
    write_series(source, phantom())
    for output_format, folder in (("nifti", "nifti"), ("dicom", "dicom_out")):
        done = predict("-i", str(source), "-o", str(tmp_path / folder), "-m", str(checkpoint),
                       "--output-format", output_format)
        assert done.returncode == 0, done.stderr
    return source, tmp_path / "nifti" / "t2_ax.nii.gz", tmp_path / "dicom_out" / "t2_ax"


def _assert_same_volume(read_back: Volume, expected: Volume) -> None:
    assert read_back.shape == expected.shape
    np.testing.assert_allclose(read_back.spacing, expected.spacing, rtol=1e-5)
    np.testing.assert_allclose(read_back.origin, expected.origin, atol=1e-3)
    np.testing.assert_allclose(read_back.direction, expected.direction, atol=1e-5)
    value_range = float(expected.array.max() - expected.array.min())
    assert np.abs(read_back.array.astype(np.float64) - expected.array).max() <= 0.005 * value_range


def test_series_reads_back_with_simpleitk_as_the_nifti_output(series_and_outputs) -> None:
    source, nifti, dicom = series_and_outputs
    expected = read_volume(nifti)
    assert expected.shape[0] == (7 - 1) * 5 + 1  # x5: 4 mm slices, 0.8 mm pixels
    _assert_same_volume(read_volume(dicom), expected)
    np.testing.assert_allclose(read_volume(source).direction, expected.direction, atol=1e-5)  # still oblique
    from isrnet.evaluation import evaluate_folders
    table = evaluate_folders(nifti.parent, dicom.parent)  # isr_evaluate finds the series and its sidecar
    assert table["case"].tolist() == ["t2_ax"] and table["psnr_all"][0] > 50 and "psnr_synth" in table


def _assert_same_in_world(read_back_path: Path, expected_path: Path) -> None:
    """Voxel by voxel in world space (the read-back axis order may differ): grids coincide, values within 0.5 %."""
    expected = read_volume(expected_path)
    read_back = read_volume(read_back_path)
    resampled = sitk.Resample(sitk.ReadImage(str(read_back_path), sitk.sitkFloat64) if read_back_path.is_file() else
                              _read_series(read_back_path), sitk.ReadImage(str(expected_path)), sitk.Transform(),
                              sitk.sitkNearestNeighbor, np.nan)
    values = sitk.GetArrayFromImage(resampled)
    assert np.isfinite(values).all(), "the grids do not coincide"
    assert sorted(read_back.shape) == sorted(expected.shape)
    assert sorted(np.round(read_back.spacing, 4)) == sorted(np.round(expected.spacing, 4))
    value_range = float(expected.array.max() - expected.array.min())
    assert np.abs(values - expected.array).max() <= 0.005 * value_range


def _read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.Cast(reader.Execute(), sitk.sitkFloat64)


def test_series_reads_back_with_dcm2niix(series_and_outputs, tmp_path: Path) -> None:
    if shutil.which("dcm2niix") is None:
        pytest.fail("dcm2niix is a test dependency (pip install dcm2niix)")
    _, nifti, dicom = series_and_outputs
    converted = tmp_path / "dcm2niix"
    converted.mkdir()
    done = subprocess.run(["dcm2niix", "-z", "y", "-b", "n", "-f", "back", "-o", str(converted), str(dicom)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same_in_world(converted / "back.nii.gz", nifti)  # dcm2niix may order the axes differently


def test_uids_are_new_and_identity_is_copied(series_and_outputs) -> None:
    source, nifti, dicom = series_and_outputs
    original = pydicom.dcmread(sorted(source.iterdir())[0])
    instances = [pydicom.dcmread(path) for path in sorted(dicom.iterdir())]
    assert len(instances) == read_volume(nifti).shape[0]
    assert len({ds.SOPInstanceUID for ds in instances}) == len(instances)
    assert not {ds.SOPInstanceUID for ds in instances} & {pydicom.dcmread(p).SOPInstanceUID for p in source.iterdir()}
    assert {ds.SeriesInstanceUID for ds in instances} == {instances[0].SeriesInstanceUID} != {original.SeriesInstanceUID}
    first = instances[0]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate",
                    "AccessionNumber", "InstitutionName", "FrameOfReferenceUID"):
        assert str(first.get(keyword)) == str(original.get(keyword)), keyword
    assert list(first.ImageType) == ["DERIVED", "SECONDARY", "OTHER"]  # an MR image needs value 3
    assert first.SeriesDescription == "T2 TSE ax isrnet x5" and int(first.SeriesNumber) == 1007
    assert float(first.SliceThickness) == pytest.approx(0.8) and float(first.SpacingBetweenSlices) == pytest.approx(0.8)
    assert [float(v) for v in first.ImageOrientationPatient] == pytest.approx(
        [float(v) for v in original.ImageOrientationPatient], abs=1e-6)
    assert [int(ds.InstanceNumber) for ds in instances] == list(range(1, len(instances) + 1))
    assert first.BitsAllocated == 16 and "RescaleSlope" in first
    assert first.ScanningSequence and first.SequenceVariant and "PositionReferenceIndicator" in first  # MR IOD


def test_names_keep_their_character_set(tmp_path: Path, checkpoint: Path) -> None:
    source = tmp_path / "t2_ax"
    write_series(source, phantom())
    for path in source.iterdir():
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 192", "山田^太郎"
        ds.save_as(path)
    done = predict("-i", str(source), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "--output-format", "dicom")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    first = pydicom.dcmread(sorted((tmp_path / "out" / "t2_ax").iterdir())[0])
    assert str(first.PatientName) == "山田^太郎" and first.SpecificCharacterSet == "ISO_IR 192"


def test_anonymise_drops_identity(tmp_path: Path, checkpoint: Path) -> None:
    source = tmp_path / "t2_ax"
    write_series(source, phantom())
    done = predict("-i", str(source), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "--output-format",
                   "same", "--anonymise")
    assert done.returncode == 0, done.stderr
    original = pydicom.dcmread(sorted(source.iterdir())[0])
    first = pydicom.dcmread(sorted((tmp_path / "out" / "t2_ax").iterdir())[0])
    assert str(first.PatientName) == "" and first.PatientID != original.PatientID
    assert first.PatientBirthDate == "" and first.StudyDate == "" and "InstitutionName" not in first
    assert first.StudyInstanceUID != original.StudyInstanceUID
    assert first.FrameOfReferenceUID != original.FrameOfReferenceUID
    assert first.PatientIdentityRemoved == "YES" and first.PatientSex == "F"
    text = b"".join(path.read_bytes() for path in (tmp_path / "out" / "t2_ax").iterdir())
    assert b"Doe^Jane" not in text and b"PAT-0042" not in text and b"19700101" not in text


def test_nifti_input_needs_a_reference_series(tmp_path: Path, checkpoint: Path) -> None:
    """A NIfTI whose slice axis is its last array axis, oblique: instances are stacked along that axis."""
    reference = tmp_path / "t2_ax"
    write_series(reference, phantom())
    nifti = tmp_path / "in" / "t2.nii.gz"
    sagittal = np.transpose(phantom((6, 18, 16)), (1, 2, 0))
    write_volume(Volume(sagittal.astype(np.float32), (0.7, 0.7, 3.5), np.array([5.0, -8.0, 2.0]),
                        rotation(-0.4, 0.25, 0.3)), nifti)
    refused = predict("-i", str(nifti), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "--output-format", "dicom")
    assert refused.returncode == 1 and "--dicom-reference" in refused.stderr
    assert not list((tmp_path / "out").glob("t2*"))
    done = predict("-i", str(nifti), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "--output-format", "dicom",
                   "--dicom-reference", str(reference))
    assert done.returncode == 0, done.stderr
    first = pydicom.dcmread(sorted((tmp_path / "out" / "t2").iterdir())[0])
    assert str(first.PatientName) == "Doe^Jane"
    assert first.FrameOfReferenceUID != pydicom.dcmread(sorted(reference.iterdir())[0]).FrameOfReferenceUID
    nifti_output = tmp_path / "nifti_out"
    assert predict("-i", str(nifti), "-o", str(nifti_output), "-m", str(checkpoint)).returncode == 0
    assert len(list((tmp_path / "out" / "t2").iterdir())) == (6 - 1) * 5 + 1
    _assert_same_in_world(tmp_path / "out" / "t2", nifti_output / "t2.nii.gz")
    same = predict("-i", str(nifti), "-o", str(tmp_path / "same"), "-m", str(checkpoint), "--output-format", "same")
    assert same.returncode == 0 and (tmp_path / "same" / "t2.nii.gz").is_file()


def test_dicom_output_never_replaces_the_input(tmp_path: Path, checkpoint: Path) -> None:
    source = tmp_path / "series" / "t2_ax"
    write_series(source, phantom())
    before = sorted(p.name for p in source.iterdir())
    done = predict("-i", str(tmp_path / "series" / "t2_ax"), "-o", str(tmp_path / "series"), "-m", str(checkpoint),
                   "--output-format", "dicom")
    assert done.returncode == 1
    assert sorted(p.name for p in source.iterdir()) == before
