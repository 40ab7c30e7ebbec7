"""The slice profile from the data: the estimator, the precedence, and where it is recorded and used."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from isrnet.datasets import load_dataset_info
from isrnet.acquisition import simulate_thick_slices
from isrnet.acquisition.estimation import ProfileEstimate, estimate_slice_profile, family_at_width, gaussian_equivalent
from isrnet.acquisition.slice_profile import ProfileSource, decide_slice_profile, decide_thickness, default_profile
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.imageio import Volume
from isrnet.inference import slice_synthesis
from isrnet.inference.predict_files import predict_file
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.networks import build_network
from isrnet.configuration import DEFAULT_NETWORK
from isrnet.training.samplers.ssft import SsftSampler


def phantom(shape: tuple[int, int, int] = (96, 64, 64), blobs: int = 400, seed: int = 0) -> np.ndarray:
    """Isotropic 1 mm texture: random balls (1.5-6 mm radius, random contrast) on a flat base."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    array = np.full(shape, 50.0, np.float32)
    for _ in range(blobs):
        centre, radius = rng.uniform(0, shape), rng.uniform(1.5, 6.0)
        array[sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2] += rng.normal(0, 30)
    return ndimage.gaussian_filter(array, 0.5)


@pytest.fixture(scope="module")
def fine() -> np.ndarray:
    return phantom()


def acquire(fine: np.ndarray, family: str, thickness: float, spacing: float) -> np.ndarray:
    return simulate_thick_slices(fine, 0, spacing, thickness, family)[0]


@pytest.mark.parametrize("thickness, spacing", [(3.0, 3.0), (4.5, 3.0), (2.0, 2.0)])
def test_estimator_recovers_the_thickness(fine: np.ndarray, thickness: float, spacing: float) -> None:
    found = estimate_slice_profile(acquire(fine, "gaussian", thickness, spacing), (spacing, 1.0, 1.0))
    assert found.family == "gaussian"
    assert found.fwhm_mm == pytest.approx(thickness, rel=0.15)


def test_estimator_sees_a_gap(fine: np.ndarray) -> None:
    """1.5 mm slices every 3 mm: the old assumption (thickness = spacing) is far off, the estimate is not."""
    found = estimate_slice_profile(acquire(fine, "gaussian", 1.5, 3.0), (3.0, 1.0, 1.0))
    assert found.fwhm_mm < 0.7 * 3.0


def test_the_gaussian_equivalent_of_a_box_like_profile_passes_its_band(fine: np.ndarray) -> None:
    """A rect acquisition's slices are closer to Gaussian slices of its equivalent width than of its FWHM."""
    assert gaussian_equivalent("gaussian", 3.0, 3.0) == 3.0
    rect, rf = gaussian_equivalent("rect", 3.0, 3.0), gaussian_equivalent("rf", 3.0, 3.0)
    assert 0.6 * 3.0 < rect < rf < 0.9 * 3.0  # an RF pulse's soft edges make it less box-like than a rect
    acquired = acquire(fine, "rect", 3.0, 3.0)
    assert (np.abs(acquire(fine, "gaussian", rect, 3.0) - acquired).mean()
            < 0.7 * np.abs(acquire(fine, "gaussian", 3.0, 3.0) - acquired).mean())


def test_rect_width_and_family_at_a_known_width(fine: np.ndarray) -> None:
    rect, gaussian = acquire(fine, "rect", 3.0, 3.0), acquire(fine, "gaussian", 3.0, 3.0)
    assert estimate_slice_profile(rect, (3.0, 1.0, 1.0)).fits_mm["rect"] == pytest.approx(3.0, rel=0.15)
    assert family_at_width(rect, (3.0, 1.0, 1.0), 3.0)[0] == "rect"
    assert family_at_width(gaussian, (3.0, 1.0, 1.0), 3.0)[0] == "gaussian"


def test_noise_is_read_off_the_background_and_modelled(fine: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    clean = np.pad(acquire(fine, "gaussian", 3.0, 3.0), ((0, 0), (12, 12), (12, 12)))  # dark air around
    sigma = 2.0  # SNR ~25 in the texture
    noisy = np.hypot(clean + rng.normal(0, sigma, clean.shape), rng.normal(0, sigma, clean.shape))
    found = estimate_slice_profile(noisy.astype(np.float32), (3.0, 1.0, 1.0))
    assert found.noise_sigma == pytest.approx(sigma, rel=0.2)
    assert found.fwhm_mm == pytest.approx(3.0, rel=0.2)


def test_preprocessing_records_the_noise_in_normalised_units(fine: np.ndarray) -> None:
    from isrnet.preprocessing.preprocessor import normalised_noise_sigma, prepare_volume
    rng = np.random.default_rng(6)
    clean = np.pad(acquire(fine, "gaussian", 3.0, 3.0), ((0, 0), (12, 12), (12, 12)))
    noisy = np.hypot(clean + rng.normal(0, 2.0, clean.shape), rng.normal(0, 2.0, clean.shape)).astype(np.float32)
    for array, expected in ((noisy, 2.0), (clean, 0.0)):
        volume = Volume(array, (3.0, 1.0, 1.0), np.zeros(3), np.eye(3))
        _, inversion = prepare_volume(volume, 0)
        assert normalised_noise_sigma(volume, inversion) * inversion.scale == pytest.approx(expected, rel=0.2)


def test_precedence(fine: np.ndarray) -> None:
    stack, spacing = acquire(fine, "gaussian", 1.5, 3.0), (3.0, 1.0, 1.0)
    given = decide_slice_profile(stack, spacing, dicom_thickness_mm=3.0, declared_thickness_mm=2.0,
                                 declared_family="rect")
    assert (given.thickness_mm, given.thickness_source, given.family, given.family_source) == \
        (2.0, "dataset.json", "rect", "dataset.json")
    header = decide_slice_profile(stack, spacing, dicom_thickness_mm=1.5)
    assert (header.thickness_mm, header.thickness_source, header.family_source) == (1.5, "dicom", "estimated")
    implausible = decide_slice_profile(stack, spacing, dicom_thickness_mm=30.0)
    assert implausible.thickness_source == "estimated" and "implausible" in implausible.notes[0]
    assert implausible.thickness_mm < 0.7 * 3.0 and 0.0 <= implausible.confidence <= 1.0
    short = decide_slice_profile(stack[:5], spacing)
    assert (short.thickness_mm, short.thickness_source, short.confidence) == (3.0, "spacing (default)", 0.0)
    assert "too few" in short.notes[0]


def test_the_thickness_decided_from_an_estimate() -> None:
    def estimate(width: float) -> ProfileEstimate:
        return ProfileEstimate("gaussian", width, 0.0, 1.0)

    assert decide_thickness(None, (4.0, 1.0, 1.0))[0] == 4.0  # impossible: the spacing
    assert decide_thickness(estimate(3.0), (4.0, 1.0, 1.0)) == (3.0, "the estimate")
    assert decide_thickness(estimate(1.0), (4.0, 1.0, 1.0))[0] == 2.0  # at the search's lower end: half the spacing
    assert decide_thickness(estimate(0.375), (1.5, 1.5, 1.5))[0] == 1.5  # near-isotropic there: the in-plane pixel
    assert decide_thickness(estimate(0.9), (2.0, 1.2, 1.2))[0] == 1.2  # never finer than the in-plane pixel


def test_slices_sharper_than_the_estimate_can_tell_get_half_the_spacing_and_a_note(fine: np.ndarray) -> None:
    """2 mm slices every 4 mm in a volume blurrier in-plane than its pixels (as EPI is): the estimate ends at the lower
    end of its search (0.25 x the spacing); the plan says so and takes half the spacing."""
    blurred = ndimage.gaussian_filter(acquire(fine, "gaussian", 2.0, 4.0), (0.0, 1.5, 1.5))
    decided = decide_slice_profile(blurred, (4.0, 1.0, 1.0))
    assert decided.estimate["fwhm_mm"] == pytest.approx(1.0, rel=0.05)
    assert (decided.thickness_mm, decided.thickness_source) == (2.0, "estimated")
    assert any("lower end of its search" in note for note in decided.notes)


def test_dataset_json_profile_is_checked(make_dataset) -> None:
    folder = make_dataset(info={"name": "T", "file_ending": ".nii.gz", "slice_profile": "triangle"})
    with pytest.raises(IsrnetError, match="family must be one of gaussian, rect"):
        load_dataset_info(folder)
    record = make_dataset("Dataset002_R", info={"name": "R", "file_ending": ".nii.gz",
                                                "slice_profile": {"thickness_mm": -1}})
    with pytest.raises(IsrnetError, match="thickness_mm must be a positive number"):
        load_dataset_info(record)


def test_dataset_json_declares_the_profile_as_a_record_or_in_the_older_form(make_dataset) -> None:
    """The record {"thickness_mm", "family"} for every case or per case; the older slice_thickness_mm and family
    string give the same declaration."""
    forms = {"Dataset003_Record": {"slice_profile": {"thickness_mm": 2.5, "family": "rect"}},
             "Dataset004_PerCase": {"slice_profile": {"a": {"thickness_mm": 2.5, "family": "rect"}, "b": {}}},
             "Dataset005_Older": {"slice_thickness_mm": {"a": 2.5}, "slice_profile": {"a": "rect"}}}
    for name, declared in forms.items():
        info = load_dataset_info(make_dataset(name, info={"name": name.split("_")[1], "file_ending": ".nii.gz",
                                                          **declared}))
        assert (info.thickness_for("a"), info.family_for("a")) == (2.5, "rect"), name
        assert (info.thickness_for("b"), info.family_for("b")) == ((2.5, "rect") if name.endswith("Record")
                                                                   else (None, None)), name


def test_plans_record_the_estimate_and_its_source(make_dataset, cli, folders, fine: np.ndarray) -> None:
    gap = Volume(acquire(fine, "gaussian", 1.5, 3.0), (3.0, 1.0, 1.0))
    make_dataset("Dataset001_Gap", {"gap": gap})
    make_dataset("Dataset002_Told", {"told": gap}, info={"name": "Told", "file_ending": ".nii.gz",
                                                         "slice_thickness_mm": 1.5, "slice_profile": "rect"})
    done = cli("-d", "1", "2")
    assert done.code == 0, done.err
    assert "thickness" in done.out and "(estimated, confidence" in done.out
    plans = json.loads((folders.preprocessed / "Dataset001_Gap" / "plans.json").read_text())
    case = plans["cases"]["gap"]["slice_profile"]
    assert case["thickness_source"] == "estimated" and case["thickness_mm"] < 2.1
    assert case["family_source"] == "estimated" and 0.0 <= case["confidence"] <= 1.0
    fingerprint = json.loads((folders.preprocessed / "Dataset001_Gap" / "dataset_fingerprint.json").read_text())
    assert fingerprint["cases"]["gap"]["slice_profile"]["estimate"]["fits_mm"].keys() == {"gaussian", "rect"}
    told = json.loads((folders.preprocessed / "Dataset002_Told" / "plans.json").read_text())["cases"]["told"]
    assert told["slice_profile"] == {"thickness_mm": 1.5, "family": "rect", "thickness_source": "dataset.json",
                                     "family_source": "dataset.json", "confidence": 1.0}


def test_ssft_simulates_and_prediction_conditions_on_the_same_ratio(tmp_path: Path, fine: np.ndarray,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's thickness reaches ssft's degradation and conditioning, and prediction's conditioning."""
    array = acquire(fine, "gaussian", 1.5, 3.0)
    normalised = (array - array.min()) / (array.max() - array.min())
    def properties(thickness: float) -> dict:
        return {"case": "gap", "spacing": (3.0, 1.0, 1.0),
                "slice_profile": default_profile(3.0, thickness, ProfileSource.PLANS).plan_record()}
    batches = {t: SsftSampler([(normalised, properties(t))]).sample(np.random.default_rng(0), 2, 24)
               for t in (1.5, 3.0)}
    assert batches[1.5].conditioning[:, 1] == pytest.approx(0.5)
    assert not np.allclose(batches[1.5].context, batches[3.0].context)  # the simulated blur follows the plan
    seen = []
    original = slice_synthesis.synthesise_slices

    def spy(network, volume, factor, thickness_ratio, *args, **kwargs):
        seen.append(thickness_ratio)
        return original(network, volume, factor, thickness_ratio, *args, **kwargs)
    monkeypatch.setattr("isrnet.inference.predictor.synthesise_slices", spy)
    plans = plan_dataset({"dataset": "Dataset001_Gap", "kind": "target", "cases": {"gap": {
        "slice_axis": 0, "slice_spacing": 3.0, "in_plane_spacing": [1.0, 1.0], "near_isotropic": False,
        "anisotropy": 3.0, "foreground_bbox": [[0, 20], [0, 40], [0, 40]],
        "slice_profile": default_profile(3.0, 1.5, ProfileSource.DATASET_JSON).as_record()}}})
    predictor = Predictor(build_network(DEFAULT_NETWORK), "untrained", plans=plans)
    result = predictor.run(Volume(array, (3.0, 1.0, 1.0)), case="gap")
    assert seen == [pytest.approx(0.5)]
    assert (result.slice_profile.thickness_mm, result.settings.thickness_source, result.factor) == (1.5, "plans", 3.0)


def test_prediction_estimates_unplanned_inputs_and_records_it(tmp_path: Path, fine: np.ndarray) -> None:
    from isrnet.imageio import write_volume
    source = write_volume(Volume(acquire(fine, "gaussian", 1.5, 3.0), (3.0, 1.0, 1.0)),
                          tmp_path / "scan.nii.gz")
    predictor = Predictor(build_network(DEFAULT_NETWORK), "untrained")
    predict_file(predictor, source, tmp_path / "out", PredictionSettings(factor=2.0), None)
    sidecar = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert sidecar["slice_profile"]["thickness_source"] == "estimated"
    assert sidecar["slice_profile"]["family_source"] == "estimated" and sidecar["slice_profile"]["estimate"]
    assert sidecar["slice_profile"]["thickness_mm"] == sidecar["settings"]["thickness_mm"] < 0.7 * 3.0
    predict_file(predictor, source, tmp_path / "given", PredictionSettings(factor=2.0, thickness_mm=3.0), None)
    given = json.loads((tmp_path / "given" / "scan.json").read_text())["slice_profile"]
    assert (given["thickness_mm"], given["thickness_source"]) == (3.0, "--slice-thickness")


def test_converted_dicom_thickness_is_used_when_plausible(make_dataset, cli, folders, fine: np.ndarray) -> None:
    gap = Volume(acquire(fine, "gaussian", 1.5, 3.0), (3.0, 1.0, 1.0))
    make_dataset("Dataset003_Dicom", {"ok": gap, "odd": gap},
                 info={"name": "Dicom", "file_ending": ".nii.gz", "dicom_slice_thickness_mm": {"ok": 1.5, "odd": 30.0}})
    done = cli("-d", "3")
    assert done.code == 0, done.err
    cases = json.loads((folders.preprocessed / "Dataset003_Dicom" / "plans.json").read_text())["cases"]
    ok, odd = cases["ok"]["slice_profile"], cases["odd"]["slice_profile"]
    assert (ok["thickness_mm"], ok["thickness_source"]) == (1.5, "dicom")
    assert odd["thickness_source"] == "estimated" and "SliceThickness 30 mm ignored" in done.out
