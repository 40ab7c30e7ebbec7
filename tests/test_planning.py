"""Fingerprint and planner on tiny raw datasets: per-case slice axis and factor, skips, overrides."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import make_volume
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import extract_fingerprint, fingerprint_path
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.imageio.geometry import transpose_for
from isrnet.stages import stage_for_kind


@pytest.fixture
def mixed_fingerprint(make_dataset, mixed_cases) -> dict:
    make_dataset("Dataset001_Mixed", mixed_cases)
    return extract_fingerprint("Dataset001_Mixed", workers=1)


def test_fingerprint_per_case(mixed_fingerprint: dict) -> None:
    assert fingerprint_path("Dataset001_Mixed").is_file()
    cases = mixed_fingerprint["cases"]
    assert sorted(cases) == ["axial", "iso", "sagittal"]
    assert (cases["axial"]["slice_axis"], cases["sagittal"]["slice_axis"]) == (2, 1)
    assert cases["axial"]["shape"] == [20, 18, 8]
    assert cases["sagittal"]["slice_spacing"] == pytest.approx(3.0)
    assert cases["sagittal"]["anisotropy"] == pytest.approx(3.0 / 0.7, rel=1e-5)
    assert cases["iso"]["near_isotropic"] and not cases["axial"]["near_isotropic"]
    assert cases["axial"]["foreground_bbox"] == [[2, 18], [2, 16], [2, 6]]
    assert cases["sagittal"]["origin"] == pytest.approx([5.0, -3.0, 2.0])


def test_plan_per_case_for_mixed_slice_axes(mixed_fingerprint: dict) -> None:
    plans = plan_dataset(mixed_fingerprint)
    axial, sagittal, iso = (plans.cases[name] for name in ("axial", "sagittal", "iso"))
    assert axial.slice_axis == 2 and transpose_for(2) == ([2, 0, 1], [1, 2, 0])
    assert axial.factor == pytest.approx(6.0)
    assert 3.0 / axial.factor == pytest.approx(0.5)  # output slice spacing
    assert sagittal.slice_axis == 1 and transpose_for(1)[0] == [1, 0, 2]
    assert sagittal.factor == pytest.approx(4.29, abs=0.005)
    assert 3.0 / sagittal.factor == pytest.approx(0.7, rel=1e-3)
    assert not axial.skip and not sagittal.skip
    assert iso.skip and "near-isotropic" in iso.reason and "1.2" in iso.reason
    assert plans.overrides == {}
    assert stage_for_kind(plans.kind).name == "ssft" and plans.sampler["name"] == "ssft"


def test_factor_override(mixed_fingerprint: dict) -> None:
    plans = plan_dataset(mixed_fingerprint, factor=2.0)
    assert all(case.factor == 2.0 for case in plans.cases.values())
    assert 3.0 / plans.cases["axial"].factor == pytest.approx(1.5)
    assert plans.overrides["factor"] == 2.0


def test_target_spacing_override(mixed_fingerprint: dict) -> None:
    plans = plan_dataset(mixed_fingerprint, target_spacing=1.0)
    assert plans.cases["axial"].factor == pytest.approx(3.0)
    assert plans.cases["sagittal"].factor == pytest.approx(3.0)
    assert 3.0 / plans.cases["axial"].factor == pytest.approx(1.0)
    assert plans.overrides["target_spacing"] == 1.0


def test_factor_that_adds_no_slices_is_an_error(mixed_fingerprint: dict) -> None:
    with pytest.raises(IsrnetError, match="target-spacing"):
        plan_dataset(mixed_fingerprint, target_spacing=3.0)


def test_set_overrides_are_applied_and_recorded(mixed_fingerprint: dict) -> None:
    plans = plan_dataset(mixed_fingerprint, overrides={"training.patch_size": 64, "sampler.pairs": "slices"})
    assert plans.training.patch_size == 64
    assert plans.sampler["pairs"] == "slices"
    assert plans.overrides == {"training.patch_size": 64, "sampler.pairs": "slices"}


@pytest.mark.parametrize("key", ["training.patch_sizes", "nope.patch_size", "training.lr.x"])
def test_unknown_override_key_is_an_error(mixed_fingerprint: dict, key: str) -> None:
    with pytest.raises(IsrnetError, match="no key"):
        plan_dataset(mixed_fingerprint, overrides={key: 1})


def test_skipped_cases_do_not_limit_the_patch(make_dataset) -> None:
    make_dataset("Dataset002_Big", {"big": make_volume((90, 90, 8), (0.5, 0.5, 3.0), margin=0),
                                    "tiny_iso": make_volume((8, 8, 8), (1.0, 1.0, 1.0), margin=0)})
    plans = plan_dataset(extract_fingerprint("Dataset002_Big", workers=1))
    assert plans.cases["tiny_iso"].skip
    assert plans.training.patch_size == 88


def test_all_cases_skipped_is_an_error(make_dataset) -> None:
    make_dataset("Dataset003_Iso", {"a": make_volume((10, 10, 10), (1.0, 1.0, 1.0)),
                                    "b": make_volume((10, 10, 10), (1.0, 1.1, 1.0))})
    with pytest.raises(IsrnetError, match="every case was skipped.*near-isotropic"):
        plan_dataset(extract_fingerprint("Dataset003_Iso", workers=1))


def test_hr_mr_with_anisotropic_volume_names_the_case(make_dataset) -> None:
    make_dataset("Dataset004_Hr", {"iso": make_volume((10, 10, 10), (1.0, 1.0, 1.0)),
                                   "thick": make_volume((10, 10, 10), (1.0, 1.0, 2.0))}, kind="hr_mr")
    fingerprint = extract_fingerprint("Dataset004_Hr", workers=1)
    with pytest.raises(IsrnetError, match="thick") as error:
        plan_dataset(fingerprint)
    assert "iso " not in str(error.value)


def test_hr_mr_plan(make_dataset) -> None:
    make_dataset("Dataset004_Hr", {"iso": make_volume((10, 10, 10), (1.0, 1.0, 1.0))}, kind="hr_mr")
    plans = plan_dataset(extract_fingerprint("Dataset004_Hr", workers=1))
    assert plans.sampler["name"] == "mrft" and plans.cases["iso"].skip is False


def test_thickness_from_dataset_json(make_dataset, mixed_cases) -> None:
    make_dataset("Dataset005_Thick", mixed_cases,
                 info={"name": "Thick", "file_ending": ".nii.gz", "slice_thickness_mm": {"axial": 2.5}})
    plans = plan_dataset(extract_fingerprint("Dataset005_Thick", workers=1))
    assert plans.cases["axial"].slice_profile.thickness_mm == 2.5
    assert plans.cases["axial"].slice_profile.thickness_source == "dataset.json"
    assert plans.cases["sagittal"].slice_profile.thickness_mm == pytest.approx(3.0)


def test_4d_image_is_one_case_with_frames(make_dataset) -> None:
    series = [make_volume((12, 12, 6), (0.8, 0.8, 4.0), seed=s) for s in range(3)]
    make_dataset("Dataset006_Dyn", {"dyn": series})
    fingerprint = extract_fingerprint("Dataset006_Dyn", workers=1)
    assert sorted(fingerprint["cases"]) == ["dyn"] and fingerprint["cases"]["dyn"]["frames"] == 3
    plans = plan_dataset(fingerprint)
    assert plans.cases["dyn"].factor == pytest.approx(5.0) and plans.cases["dyn"].frames == 3


@pytest.mark.parametrize("array, message", [
    (np.full((10, 10, 6), np.nan, np.float32), "NaN"),
    (np.zeros((10, 10, 6), np.float32), "all voxels are zero"),
    (np.ones((10, 10, 3), np.float32), "only 3 slices"),
])
def test_bad_case_is_an_error_and_nothing_is_written(make_dataset, array: np.ndarray, message: str) -> None:
    from isrnet.imageio import Volume
    make_dataset("Dataset007_Bad", {"good": make_volume((10, 10, 6), (1, 1, 3)), "bad": Volume(array, (1, 1, 3))})
    with pytest.raises(IsrnetError, match=message) as error:
        extract_fingerprint("Dataset007_Bad", workers=1)
    assert "bad.nii.gz" in str(error.value) and "good" not in str(error.value)
    assert not fingerprint_path("Dataset007_Bad").exists()


def test_several_bad_cases_are_reported_together(make_dataset) -> None:
    from isrnet.imageio import Volume
    make_dataset("Dataset008_Bad", {"zero": Volume(np.zeros((10, 10, 6), np.float32), (1, 1, 3)),
                                    "thin": Volume(np.ones((10, 10, 2), np.float32), (1, 1, 3))})
    with pytest.raises(IsrnetError) as error:
        extract_fingerprint("Dataset008_Bad", workers=2)
    lines = str(error.value).splitlines()
    assert "2 case(s)" in lines[0] and len(lines) == 3
    assert any("zero.nii.gz" in line for line in lines) and any("thin.nii.gz" in line for line in lines)


def test_nan_in_a_format_that_keeps_it_is_caught_by_the_fingerprint(make_dataset) -> None:
    from isrnet.imageio import Volume, write_volume
    folder = make_dataset("Dataset009_Nan", {"good": make_volume((10, 10, 6), (1, 1, 3))})
    array = make_volume((10, 10, 6), (1, 1, 3)).array
    array[5, 5, 3] = np.nan
    write_volume(Volume(array, (1, 1, 3)), folder / "imagesTr" / "bad.nrrd")
    with pytest.raises(IsrnetError, match="bad.nrrd: contains NaN"):
        extract_fingerprint("Dataset009_Nan", workers=1)


def test_a_4d_case_no_longer_clashes_with_a_case_named_like_its_frames(make_dataset) -> None:
    make_dataset("Dataset010_Clash", {"dyn": [make_volume((12, 12, 6), (0.8, 0.8, 4.0), seed=s) for s in range(2)],
                                      "dyn_t001": make_volume((12, 12, 6), (0.8, 0.8, 4.0))})
    cases = extract_fingerprint("Dataset010_Clash", workers=1)["cases"]
    assert {name: case["frames"] for name, case in cases.items()} == {"dyn": 2, "dyn_t001": 1}


def test_near_isotropic_limit_survives_float32_spacing(make_dataset) -> None:
    # NIfTI stores 1.2 mm as 1.2000000477 mm: the case at the limit must still be skipped
    make_dataset("Dataset011_Limit", {"at_limit": make_volume((10, 10, 10), (1.0, 1.0, 1.2)),
                                      "half_mm": make_volume((10, 10, 10), (0.5, 0.5, 0.6)),
                                      "above": make_volume((10, 10, 10), (1.0, 1.0, 1.25))})
    plans = plan_dataset(extract_fingerprint("Dataset011_Limit", workers=1))
    assert plans.cases["at_limit"].skip and plans.cases["half_mm"].skip
    assert not plans.cases["above"].skip
    assert plans.cases["above"].factor == pytest.approx(1.25)


def test_hr_mr_isotropy_limit_survives_float32_spacing(make_dataset) -> None:
    make_dataset("Dataset012_Hr", {"at_limit": make_volume((10, 10, 10), (1.0, 1.0, 1.1))}, kind="hr_mr")
    plans = plan_dataset(extract_fingerprint("Dataset012_Hr", workers=1))
    assert plans.cases["at_limit"].skip is False


def test_plans_of_format_3_are_migrated_and_serialise_as_the_current_format(folders) -> None:
    """plans.json as 3cd1c9b wrote it: read into typed plans (the case's profile one record, the British key), and
    the typed plans written back are read to the same plans; `--set` with a format-3 key names the new one."""
    import json
    import shutil
    from pathlib import Path
    from isrnet.plans import PLANS_FORMAT, Plans
    from isrnet.experiment_planning.plans_file import load_plans, plans_path, set_plans_value
    from isrnet.errors import IsrnetError
    old = Path(__file__).parent / "data" / "plans_format3_3cd1c9b.json"
    target = plans_path("Dataset001_DemoBrain")
    target.parent.mkdir(parents=True)
    shutil.copy(old, target)
    plans = load_plans("Dataset001_DemoBrain")
    profile = plans.cases["DemoBrain"].slice_profile
    assert (profile.thickness_mm, profile.family, profile.thickness_source, profile.family_source,
            profile.confidence) == (4.0, "gaussian", "estimated", "estimated", 0.359)
    assert plans.normalisation == json.loads(old.read_text())["normalization"] and plans.cases["DemoBrain"].factor == 4.0
    record = plans.as_json()
    assert record["plans_format"] == PLANS_FORMAT and "normalization" not in record
    assert Plans.from_json(record).as_json() == record
    with pytest.raises(IsrnetError, match="now cases.DemoBrain.slice_profile.thickness_mm"):
        set_plans_value(plans, "cases.DemoBrain.slice_thickness", 3.0)
    assert set_plans_value(plans, "cases.DemoBrain.slice_profile.thickness_mm", 3.0) == \
        ["cases.DemoBrain.slice_profile.thickness_mm"]
    assert (plans.cases["DemoBrain"].slice_profile.thickness_mm,
            plans.cases["DemoBrain"].slice_profile.thickness_source) == (3.0, "--set")
