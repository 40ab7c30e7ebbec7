"""Preprocessing is invertible, never resamples the slice axis, and can be re-run safely."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import make_volume
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import extract_fingerprint
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.imageio import read_volumes
from isrnet.imageio.geometry import transpose_for
from isrnet.preprocessing.preprocessor import (DONE_FILE, crop_box, prepare_volume, preprocess_dataset,
                                               preprocessed_cases, restore)
from isrnet.utilities.files import load_json

DATASET = "Dataset001_Mixed"


def _run(workers: int = 1, **plan_options) -> tuple[dict, dict, object]:
    fingerprint = extract_fingerprint(DATASET, workers=workers)
    plans = plan_dataset(fingerprint, **plan_options)
    return fingerprint, plans, preprocess_dataset(DATASET, fingerprint, plans, workers=workers)


def _load(output, case: str) -> tuple[np.ndarray, dict]:
    return np.load(output / "data" / f"{case}.npy"), load_json(output / "properties" / f"{case}.json")


@pytest.fixture
def mixed(make_dataset, mixed_cases) -> dict:
    make_dataset(DATASET, mixed_cases)
    return mixed_cases


@pytest.mark.parametrize("case", ["axial", "sagittal"])
def test_restore_inverts_preprocessing(mixed: dict, case: str) -> None:
    fingerprint, plans, output = _run()
    array, properties = _load(output, case)
    original = mixed[case].array
    restored = restore(array, properties)
    assert restored.shape == original.shape
    box = tuple(slice(a, b) for a, b in properties["crop_box"])
    np.testing.assert_allclose(restored[box], original[box], rtol=1e-5, atol=1e-3)
    outside = np.ones(original.shape, bool)
    outside[box] = False
    assert np.all(restored[outside] == properties["background"])


@pytest.mark.parametrize("case, axis", [("axial", 2), ("sagittal", 1)])
def test_slice_axis_first_and_never_resampled(mixed: dict, case: str, axis: int) -> None:
    _, plans, output = _run()
    array, properties = _load(output, case)
    volume = mixed[case]
    assert array.shape[0] == volume.shape[axis]  # every slice kept, none interpolated
    assert properties["crop_box"][axis] == [0, volume.shape[axis]]
    assert properties["spacing"][0] == pytest.approx(volume.spacing[axis])
    forward = transpose_for(plans.cases[case].slice_axis)[0]
    assert properties["spacing"] == pytest.approx([volume.spacing[a] for a in forward])
    # slice k of the preprocessed array is input slice k (after crop and scaling)
    box = properties["crop_box"]
    cropped = volume.array[tuple(slice(a, b) for a, b in box)]
    for k in range(array.shape[0]):
        expected = np.take(cropped, k, axis=axis) - properties["offset"]
        np.testing.assert_allclose(array[k] * properties["scale"], expected, rtol=1e-5, atol=1e-3)
    assert "factor" not in properties  # a plan decision: training reads it from plans.json (load_training_cases)
    np.testing.assert_allclose(properties["origin"], volume.origin)
    np.testing.assert_allclose(properties["direction"], volume.direction, atol=1e-6)


def test_crop_keeps_margin_in_plane_and_all_slices() -> None:
    box = crop_box([[5, 10], [0, 20], [3, 4]], [30, 20, 8], slice_axis=2)
    assert box == [[1, 14], [0, 20], [0, 8]]
    assert crop_box([[5, 10], [0, 20], [3, 4]], [30, 20, 8], slice_axis=None)[2] == [0, 8]


def test_skipped_cases_are_not_preprocessed(mixed: dict) -> None:
    _, _, output = _run()
    assert sorted(preprocessed_cases(DATASET)) == ["axial", "sagittal"]
    assert not (output / "data" / "iso.npy").exists()


def test_rerun_is_safe_and_gives_the_same_result(mixed: dict) -> None:
    _, _, output = _run()
    first = {case: _load(output, case) for case in ("axial", "sagittal")}
    _, _, output = _run(workers=2)
    for case, (array, properties) in first.items():
        again, again_properties = _load(output, case)
        np.testing.assert_array_equal(again, array)
        assert again_properties == properties
    assert sorted(load_json(output / DONE_FILE)["cases"]) == ["axial", "sagittal"]
    assert not [p.name for p in output.rglob("*") if "partial" in p.name]


def test_rerun_with_other_plans_replaces_the_case_list(mixed: dict) -> None:
    _run()
    _run(factor=2.0)  # the near-isotropic case is no longer skipped
    assert sorted(preprocessed_cases(DATASET)) == ["axial", "iso", "sagittal"]


def test_a_4d_image_is_preprocessed_as_one_case_of_frames(make_dataset) -> None:
    series = [make_volume((12, 12, 6), (0.8, 0.8, 4.0), seed=s) for s in range(2)]
    folder = make_dataset(DATASET, {"dyn": series})
    _, _, output = _run()
    assert preprocessed_cases(DATASET) == ["dyn"]
    volumes = read_volumes(folder / "imagesTr" / "dyn.nii.gz")
    array, properties = _load(output, "dyn")
    assert array.shape[0] == properties["frames"] == 2
    for index in range(2):  # one crop; each frame normalised by its own range, as prediction normalises it
        expected, inversion = prepare_volume(volumes[index], properties["slice_axis"], properties["normalisation"],
                                             properties["crop_box"])
        np.testing.assert_array_equal(array[index], expected)
        np.testing.assert_allclose(restore(array[index], inversion)[2:-2, 2:-2], volumes[index].array[2:-2, 2:-2],
                                   rtol=1e-5, atol=1e-3)


def test_not_preprocessed_names_the_command(folders) -> None:
    with pytest.raises(IsrnetError, match="isr_plan_and_preprocess -d Dataset009_None"):
        preprocessed_cases("Dataset009_None")
