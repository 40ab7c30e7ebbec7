"""isr_fuse: several stacks of one patient -> one volume (tiny synthetic stacks; the benchmark measures quality)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import rotation
from isrnet.acquisition import simulate_thick_slices
from isrnet.errors import IsrnetError
from isrnet.evaluation.metrics import on_reference_grid
from isrnet.fusion.common_grid import _corners, common_grid
from isrnet.fusion.frequency_fusion import StackResponse, fuse
from isrnet.fusion.grouping import group_stacks
from isrnet.fusion.harmonisation import match_intensities
from isrnet.fusion.registration import identity_at, register_rigid, volume_centre
from isrnet.imageio import Volume, read_volume, write_volume, write_volumes
from training_support import single_thread, spheres_phantom  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def phantom() -> Volume:
    return Volume(spheres_phantom((48, 48, 48), seed=4, count=50, smooth=1.0), (1.0, 1.0, 1.0),
                  np.array([-20.0, 5.0, 10.0]))


def _stack(fine: Volume, axis: int, step: int = 4) -> Volume:
    low = simulate_thick_slices(fine.array, axis, step, float(step), "gaussian")[0]
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = float(step)
    return Volume(low.astype(np.float32), tuple(spacing), fine.origin, fine.direction)


def test_the_grid_has_the_reference_orientation_finest_spacing_and_covers_the_union() -> None:
    axial = Volume(np.zeros((20, 30, 8), np.float32), (0.5, 0.5, 3.0), np.array([0.0, 0.0, 0.0]), np.eye(3))
    oblique = Volume(np.zeros((6, 24, 24), np.float32), (4.0, 0.7, 0.7), np.array([5.0, -10.0, 3.0]),
                     rotation(0.3, 0.2, 0.1))
    grid = common_grid(axial, [oblique], [identity_at(np.zeros(3))], 0.5, "union")
    assert grid.spacing == (0.5, 0.5, 0.5)
    np.testing.assert_allclose(grid.direction, axial.direction)
    inside = (np.concatenate([_corners(axial), _corners(oblique)]) - grid.origin) @ grid.direction / 0.5
    assert inside.min() >= -0.5 - 1e-6 and np.all(inside.max(axis=0) <= np.asarray(grid.shape) - 0.5 + 1e-6)
    only = common_grid(axial, [oblique], [identity_at(np.zeros(3))], 0.5, "reference")
    # the reference's field of view at 0.5 mm, on its own lattice: its in-plane voxels exactly, and along its
    # 3 mm slice axis the 24 mm extent (edges included) at 0.5 mm
    assert only.shape == (20, 30, 49)
    np.testing.assert_allclose(only.origin, axial.index_to_world([0, 0, -0.5]))


def test_registration_recovers_a_known_shift_and_rotation(phantom) -> None:
    rotation_matrix = sitk.Euler3DTransform()
    rotation_matrix.SetCenter(tuple(volume_centre(phantom)))
    rotation_matrix.SetRotation(0.0, np.radians(3.0), 0.0)
    rotation_matrix.SetTranslation((1.2, -0.8, 0.5))
    # the stack shows the anatomy moved by T, stack(T(p)) = phantom(p): resample the phantom through T's inverse
    moved = phantom.with_array(sitk.GetArrayFromImage(sitk.Resample(
        _itk(phantom), _itk(phantom), rotation_matrix.GetInverse(), sitk.sitkBSpline, 0.0)))
    found = register_rigid(phantom, moved)
    assert found.ok, found.message
    vector, angle, shift = found.motion_in_frame(np.eye(3))
    assert abs(angle - 3.0) < 0.3
    np.testing.assert_allclose(shift, [1.2, -0.8, 0.5], atol=0.3)


def _itk(volume: Volume) -> sitk.Image:
    from isrnet.imageio.reader_writer import to_sitk
    return to_sitk(volume)


def test_identical_stacks_fuse_to_themselves_and_partial_overlap_keeps_the_only_stack(phantom) -> None:
    array = phantom.array
    along_z = StackResponse(np.array([1.0, 0.0, 0.0]), 4.0, 1.0)
    along_x = StackResponse(np.array([0.0, 0.0, 1.0]), 4.0, 1.0)
    fused, record = fuse([array, array.copy()], [along_z, along_x], 1.0)
    np.testing.assert_allclose(fused, array, atol=1e-3 * float(array.max()))
    half = array.copy()
    half[:, :, 24:] = np.nan  # the second stack covers half the grid
    other = ndimage.gaussian_filter(array, (2.0, 0, 0))  # blurred along z, like an axial stack
    fused, record = fuse([other, half], [along_z, along_x], 1.0)
    np.testing.assert_array_equal(fused[:, :, 24:], other[:, :, 24:])  # only the first stack is there
    assert np.isfinite(fused).all() and set(record["coverage_by_stack_subset"]) == {"0", "0+1"}
    error_fused = np.abs(fused[:, :, :24] - array[:, :, :24]).mean()
    assert error_fused < np.abs(other[:, :, :24] - array[:, :, :24]).mean()  # the sharp stack's detail came in


def test_a_different_contrast_is_refused_unless_allowed(phantom) -> None:
    array = phantom.array
    head = ndimage.binary_dilation(array > 50, iterations=3)
    inverted = np.where(head, 1200.0 - array, 0.0).astype(np.float32)
    same = match_intensities(array, 2.0 * array + 10.0, 1.0, "scaled")
    assert same.kind == "linear" and abs(same.scale - 0.5) < 0.05
    with pytest.raises(IsrnetError, match="--allow-mixed-contrast"):
        match_intensities(array, inverted, 1.0, "inverted")
    mapping = match_intensities(array, inverted, 1.0, "inverted", allow_mixed=True)
    mapped = mapping.apply(inverted)
    assert mapping.kind == "conditional mean" and np.corrcoef(mapped[head], array[head])[0, 1] > 0.5


def test_one_stack_is_its_prediction(phantom, small_model, tmp_path) -> None:
    from isrnet.fusion import FuseOptions, fuse_paths
    from isrnet.inference import PredictOptions, PredictionSettings, predict_paths
    stack = write_volume(_stack(phantom, 0), tmp_path / "in" / "p01__ax.nii.gz")
    fused = fuse_paths([stack], tmp_path / "fused.nii.gz", small_model, FuseOptions(), log=lambda m: None)
    predicted = predict_paths(stack, tmp_path / "pred", small_model, PredictOptions(PredictionSettings()))[0].output
    a, b = read_volume(fused), read_volume(predicted)
    np.testing.assert_allclose(a.array, b.array, atol=1e-4)
    np.testing.assert_allclose(a.spacing, b.spacing)
    assert json.loads((tmp_path / "fused.json").read_text())["fusion"]["method"].startswith("one stack")


def test_orthogonal_stacks_fuse_into_one_file_with_sidecar_and_qc(phantom, small_model, tmp_path) -> None:
    from isrnet.fusion import FuseOptions, fuse_paths
    axial = write_volume(_stack(phantom, 0), tmp_path / "ax.nii.gz")
    sagittal = write_volume(_stack(phantom, 2).transposed([2, 1, 0]), tmp_path / "sag.nii.gz")  # slice axis first
    before = {p: p.read_bytes() for p in (axial, sagittal)}
    output = fuse_paths([axial, sagittal], tmp_path / "out" / "fused.nii.gz", small_model, FuseOptions(),
                        log=lambda m: None)
    fused = read_volume(output)
    assert fused.spacing == (1.0, 1.0, 1.0) and all(48 <= n <= 52 for n in fused.shape)  # the stacks' union
    np.testing.assert_allclose(fused.direction, np.eye(3))
    values = on_reference_grid(fused, phantom)  # the anatomy where it belongs in world coordinates
    assert np.isfinite(values).all() and np.corrcoef(values.ravel(), phantom.array.ravel())[0, 1] > 0.95
    record = json.loads((tmp_path / "out" / "fused.json").read_text())
    assert record["reference_stack"] == "ax" and record["fusion"]["stacks"] == ["ax", "sag"]
    sag = next(s for s in record["stacks"] if s["name"] == "sag")
    assert sag["registration"]["ok"] and sag["registration"]["translation_norm_mm"] < 1.0
    assert sag["intensity_map"]["kind"] == "linear"
    assert (tmp_path / "out" / "fused_qc.png").stat().st_size > 1000
    assert all(p.read_bytes() == content for p, content in before.items())


def test_stacks_group_by_infix_or_patients_map_and_parts_keep_patients_whole(tmp_path) -> None:
    from isrnet.inference.predict_files import find_inputs, part_of
    folder = tmp_path / "scans"
    for name in ("P01__sag", "P01__cor", "P02__ax", "P02__cor", "lone_0000", "A_t1", "A_t2"):
        write_volume(Volume(np.ones((4, 4, 4), np.float32), (1.0, 1.0, 3.0)), folder / f"{name}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "x", "file_ending": ".nii.gz",
                                                      "patients": {"A": ["A_t1", "A_t2"]}}))
    patients = group_stacks(folder, find_inputs(folder))
    assert {p.name: sorted(s.name for s in p.stacks) for p in patients} == {
        "A": ["A_t1.nii.gz", "A_t2.nii.gz"], "P01": ["P01__cor.nii.gz", "P01__sag.nii.gz"],
        "P02": ["P02__ax.nii.gz", "P02__cor.nii.gz"], "lone": ["lone_0000.nii.gz"]}
    parts = [part_of(patients, 3, k) for k in range(3)]
    assert sorted(p.name for part in parts for p in part) == ["A", "P01", "P02", "lone"]
    (folder / "dataset.json").write_text(json.dumps({"name": "x", "file_ending": ".nii.gz",
                                                      "patients": {"A": ["A_t1", "missing"]}}))
    with pytest.raises(IsrnetError, match="no such stack"):
        group_stacks(folder, find_inputs(folder))


def test_fuse_cli_errors_are_one_line(monkeypatch, capsys, tmp_path) -> None:
    from isrnet.cli.fuse import main
    stack = write_volume(Volume(np.ones((8, 8, 4), np.float32), (1.0, 1.0, 4.0)), tmp_path / "a.nii.gz")
    for argv, message in (([str(stack), "-o", str(tmp_path / "out")], "give a file name ending in"),
                          ([str(tmp_path / "nope.nii.gz"), "-o", str(tmp_path / "f.nii.gz")], "no such file")):
        monkeypatch.setattr(sys, "argv", ["isr_fuse", "-i", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        err = capsys.readouterr().err
        assert exit_info.value.code == 1 and message in err and "Traceback" not in err


def test_dicom_stacks_fuse_into_a_derived_series_of_the_reference(small_model, tmp_path) -> None:
    from test_dicom_output import IDENTITY, phantom as dicom_phantom, write_series
    from isrnet.fusion import FuseOptions, fuse_paths
    from isrnet.inference import OutputFormat
    write_series(tmp_path / "t2_ax", dicom_phantom())
    output = fuse_paths([tmp_path / "t2_ax"], tmp_path / "fused_series", small_model,
                        FuseOptions(output=OutputFormat("dicom")), log=lambda m: None)
    series = read_volume(output)
    assert series.shape[0] > 7 * 3  # super-resolved along the slice axis, one instance per new plane
    files = sorted(output.iterdir())
    import pydicom
    first = pydicom.dcmread(files[0])
    assert first.PatientID == IDENTITY["0010|0020"] and "DERIVED" in first.ImageType
    assert json.loads((tmp_path / "fused_series.json").read_text())["dicom"]["anonymised"] is False


def test_a_stack_that_fails_to_register_is_excluded_with_a_warning(phantom, small_model, tmp_path) -> None:
    from isrnet.fusion import FuseOptions, fuse_paths
    axial = write_volume(_stack(phantom, 0), tmp_path / "ax.nii.gz")
    far = _stack(phantom, 2)
    far = Volume(far.array, far.spacing, far.origin + np.array([400.0, 0.0, 0.0]), far.direction)  # no overlap
    stray = write_volume(far, tmp_path / "stray.nii.gz")
    with pytest.warns(UserWarning, match="stray: .*excluded from the fusion"):
        output = fuse_paths([axial, stray], tmp_path / "fused.nii.gz", small_model, FuseOptions(field_of_view="reference"),
                            log=lambda m: None)
    record = json.loads((tmp_path / "fused.json").read_text())
    assert record["fusion"]["stacks"] == ["ax"]
    assert not next(s for s in record["stacks"] if s["name"] == "stray")["registration"]["ok"]
    assert np.isfinite(read_volume(output).array).all()


def test_a_folder_is_fused_per_patient_and_a_failing_patient_does_not_stop_the_others(phantom, small_model,
                                                                                      tmp_path) -> None:
    from isrnet.fusion import FuseOptions, fuse_folder
    folder = tmp_path / "scans"
    write_volume(_stack(phantom, 0), folder / "P01__ax.nii.gz")
    write_volume(_stack(phantom, 2), folder / "P01__sag.nii.gz")
    write_volume(_stack(phantom, 1), folder / "P02__cor.nii.gz")
    series = _stack(phantom, 0)
    write_volumes([series, series], folder / "P03__dynamic.nii.gz")  # 4D: not a stack
    outcome = fuse_folder(folder, tmp_path / "fused", small_model, FuseOptions(qc_figure=False), log=lambda m: None)
    assert outcome["P01"] is None and outcome["P02"] is None and "a time series of 2 frames" in outcome["P03"]
    assert json.loads((tmp_path / "fused" / "P01.json").read_text())["fusion"]["stacks"] == ["P01__ax", "P01__sag"]
    assert (tmp_path / "fused" / "P02.nii.gz").is_file() and not (tmp_path / "fused" / "P03.nii.gz").exists()
