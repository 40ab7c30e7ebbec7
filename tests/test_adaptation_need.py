"""Where patient-level adaptation can pay (training/adaptation_need.py): a case's appearance against its dataset's."""
from __future__ import annotations

import numpy as np

from isrnet.training.adaptation_need import Appearance, adaptation_need, appearance

T1 = tuple(np.linspace(0.2, 0.95, 9))


def _case(name: str, noise: float = 0.0, contrast=T1, family: str = "gaussian", ratio: float = 1.0) -> Appearance:
    return Appearance(name, noise, tuple(contrast), family, ratio)


def test_a_case_with_a_twin_in_the_dataset_is_skipped_and_one_without_is_adapted() -> None:
    dataset = [_case("a"), _case("b", noise=0.02), _case("c", family="rect")]
    assert not adaptation_need(_case("new", noise=0.002), dataset).adapt  # like a (noise below the floor)
    assert adaptation_need(_case("new", noise=0.002), dataset).nearest == "a"
    noisy = adaptation_need(_case("new", noise=0.08), dataset)
    assert noisy.adapt and noisy.unlike == ("noise",) and "unlike" in noisy.reason
    inverted = adaptation_need(_case("new", contrast=T1[::-1]), dataset)
    assert inverted.adapt and inverted.unlike == ("contrast",)
    gap = adaptation_need(_case("new", ratio=0.5), dataset)
    assert gap.adapt and gap.unlike == ("profile",)
    assert not adaptation_need(_case("new", family="rect", ratio=1.1), dataset).adapt  # like c


def test_the_case_itself_is_not_its_own_twin_and_without_a_dataset_every_case_is_adapted() -> None:
    assert adaptation_need(_case("a"), None).adapt
    alone = adaptation_need(_case("a"), [_case("a")])
    assert not alone.adapt and "this case alone" in alone.reason
    assert adaptation_need(_case("a", noise=0.05), [_case("a", noise=0.05), _case("b")]).unlike == ("noise",)


def test_appearance_reads_noise_contrast_and_profile_from_a_prepared_case() -> None:
    rng = np.random.default_rng(0)
    array = np.zeros((12, 40, 40), np.float32)
    array[:, 10:30, 10:30] = rng.uniform(0.3, 1.0, (12, 20, 20))
    properties = {"case": "x", "spacing": [4.0, 1.0, 1.0], "noise_sigma": 0.035,
                  "slice_profile": {"thickness_mm": 2.0, "family": "rect", "thickness_source": "plans",
                                    "family_source": "plans"}}
    seen = appearance(array, properties)
    assert seen.family == "rect" and seen.thickness_ratio == 0.5
    assert 0.04 < seen.noise < 0.06  # sigma over the foreground's 5-95 % range (about 0.63 here)
    assert np.all(np.diff(seen.contrast) > 0) and 0 < seen.contrast[0] < seen.contrast[-1] < 1
    inverted = appearance(np.where(array > 0, 1.3 - array, 0).astype(np.float32), properties)
    assert np.mean(np.abs(np.subtract(seen.contrast, inverted.contrast))) < 0.05  # uniform: symmetric deciles
