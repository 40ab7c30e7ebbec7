"""A time series (4D image) is one case with frames: fingerprint, plans, preprocessing, ssft pairs, training."""
from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from isrnet.imageio import Volume, write_volumes
from isrnet.utilities.files import load_json
from training_support import (isr_train, plan_and_preprocess, single_thread,  # noqa: F401  (fixture)
                              small_plan_overrides, smooth_volume)

DATASET = "Dataset001_Series"
SHAPE = (8, 24, 24)  # [Z, Y, X]: 24 x 24 x 8 voxels of 1 x 1 x 3 mm
SPACING = (3.0, 1.0, 1.0)
LEVELS = (1000.0, 2000.0, 3000.0)  # each frame of 'cine' has its own brightness


def cine_frame(index: int) -> np.ndarray:
    """Frame `index` of 'cine': a textured block on a zero background, one voxel further along y and x per frame
    (so the frames' foreground boxes differ), at its own level."""
    array = np.zeros(SHAPE, np.float32)
    texture = smooth_volume((SHAPE[0], 14, 14), seed=index, sigma=1.5) / 10.0
    array[:, 4 + index:18 + index, 4 + index:18 + index] = LEVELS[index] + texture
    return array


def still_volume() -> np.ndarray:
    array = np.zeros(SHAPE, np.float32)
    array[:, 3:21, 2:22] = 100.0 + smooth_volume((SHAPE[0], 18, 20), seed=7, sigma=1.5)
    return array


@pytest.fixture
def series(folders):
    """'cine' (3 different frames, 40 ms apart), 'copies' (3 identical frames of 'still') and 'still' (3D)."""
    images = folders.raw / DATASET / "imagesTr"
    write_volumes([Volume(cine_frame(t), SPACING) for t in range(3)], images / "cine.nii.gz", time_step_seconds=0.04)
    write_volumes([Volume(still_volume(), SPACING)] * 3, images / "copies.nii.gz", time_step_seconds=0.04)
    write_volumes([Volume(still_volume(), SPACING)], images / "still.nii.gz")
    (folders.raw / DATASET / "dataset.json").write_text(json.dumps({"name": "Series", "file_ending": ".nii.gz"}))
    return folders


def _planned(monkeypatch, capsys, *overrides: str):
    plan_and_preprocess(monkeypatch, capsys, "-d", "1", "--set", *small_plan_overrides(), *overrides)


def _preprocessed(folders, case: str) -> tuple[np.ndarray, dict]:
    folder = folders.preprocessed / DATASET
    return np.load(folder / "data" / f"{case}.npy"), load_json(folder / "properties" / f"{case}.json")


def test_a_4d_image_is_one_case_with_frames_in_fingerprint_and_plans(series, monkeypatch) -> None:
    import isrnet.experiment_planning.fingerprint as fingerprint_module
    from isrnet.experiment_planning import plan_experiment
    decided, decide = [], fingerprint_module.decide_slice_profile

    def counted(array, *args, **kwargs):
        decided.append(float(array.max()))
        return decide(array, *args, **kwargs)

    monkeypatch.setattr(fingerprint_module, "decide_slice_profile", counted)
    cases = fingerprint_module.extract_fingerprint(DATASET, workers=1)["cases"]
    assert sorted(cases) == ["cine", "copies", "still"]
    cine = cases["cine"]
    assert (cine["frames"], cine["shape"], cine["slice_axis"]) == (3, list(SHAPE), 0)
    assert cine["time"] == {"frames": 3, "step": pytest.approx(0.04), "unit": "sec", "frame_times_ms": None}
    assert cine["foreground_bbox"] == [[0, 8], [4, 20], [4, 20]]  # the union of the frames' boxes
    assert cine["intensity"]["min"] == 0.0 and cine["intensity"]["max"] > LEVELS[2]  # every frame counted
    assert (cases["still"]["frames"], "time" in cases["still"]) == (1, False)
    assert len(decided) == 3 and max(decided) < LEVELS[1]  # one decision per case, on the first frame
    assert cases["copies"]["slice_profile"] == cases["still"]["slice_profile"]
    for key in ("p00_5", "p99_5", "p99_9", "foreground_p00_5", "foreground_p99_5", "min", "max"):
        assert cases["copies"]["intensity"][key] == cases["still"]["intensity"][key], key

    plans = plan_experiment(DATASET)
    assert {name: case.frames for name, case in plans.cases.items()} == {"cine": 3, "copies": 3, "still": 1}
    written = load_json(series.preprocessed / DATASET / "plans.json")["cases"]
    assert (written["cine"]["frames"], written["still"]["frames"]) == (3, 1)


def test_frames_are_preprocessed_alike_into_one_array(series, monkeypatch, capsys) -> None:
    from isrnet.imageio.reader_writer import open_frames
    from isrnet.preprocessing.preprocessor import crop_box, prepare_volume, restore
    _planned(monkeypatch, capsys)
    array, properties = _preprocessed(series, "cine")
    assert array.shape == (3, 8, 24, 24) and properties["frames"] == 3 and properties["time"]["frames"] == 3
    fingerprint = load_json(series.preprocessed / DATASET / "dataset_fingerprint.json")["cases"]["cine"]
    box = crop_box(fingerprint["foreground_bbox"], fingerprint["shape"], 0)
    with open_frames(series.raw / DATASET / "imagesTr" / "cine.nii.gz") as source:
        for index, frame in enumerate(source):
            expected, inversion = prepare_volume(frame, 0, properties["normalisation"], box)
            np.testing.assert_array_equal(array[index], expected)  # one crop; each frame normalised as predicted
            if index == 0:  # the properties' inversion is the first frame's
                assert (inversion.offset, inversion.scale) == (properties["offset"], properties["scale"])
                np.testing.assert_allclose(restore(array[index], properties), frame.array, rtol=1e-6, atol=1e-3)

    copies, copies_properties = _preprocessed(series, "copies")
    still, still_properties = _preprocessed(series, "still")
    for index in range(3):  # identical frames: each is exactly what the same volume as a 3D case gives
        np.testing.assert_array_equal(copies[index], still)
    for key in ("offset", "scale", "crop_box", "background", "spacing", "original_shape", "slice_axis"):
        assert copies_properties[key] == still_properties[key], key
    assert copies_properties["noise_sigma"] == pytest.approx(still_properties["noise_sigma"], rel=1e-6)
    assert still.ndim == 3 and still_properties["frames"] == 1 and "time" not in still_properties


def _frame_of(truth: np.ndarray, levels: np.ndarray) -> int:
    """The frame a target patch came from: its brightest voxels' level."""
    return int(np.argmin(np.abs(levels - np.percentile(truth, 99))))


@pytest.mark.parametrize("pairs", ["inplane", "slices"])
def test_ssft_draws_its_pairs_across_every_frame(series, monkeypatch, capsys, pairs: str) -> None:
    from isrnet.experiment_planning.plans_file import load_plans
    from isrnet.preprocessing.preprocessor import load_training_cases
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers.ssft import SsftSampler
    _planned(monkeypatch, capsys)
    cases = {properties["case"]: (array, properties) for array, properties in load_training_cases(DATASET,
                                                                                                 load_plans(DATASET))}
    array, properties = cases["cine"]
    assert isinstance(array, np.memmap) and array.shape == (3, 8, 24, 24)
    assert isinstance(cases["still"][0], np.memmap) and cases["still"][0].ndim == 3
    marked = np.stack([array[t] * (t + 1) for t in range(3)])  # frames are normalised alike: a level per frame
    levels = np.array([marked[t].max() for t in range(3)])
    sampler = SsftSampler([(marked, properties)], pairs)
    drawn = [_frame_of(truth, levels) for i in range(12)
             for truth in sampler.sample(batch_rng(0, i), 4, 24).targets]
    assert set(drawn) == {0, 1, 2}, drawn
    all_cases = SsftSampler(list(cases.values()), pairs)
    sizes = {name: array.size for name, (array, _) in cases.items()}
    assert all_cases.weights.tolist() == pytest.approx([sizes[name] / sum(sizes.values()) for name in cases])


def test_the_validation_band_is_held_out_of_every_frame() -> None:
    """Rows encode themselves and frames their index (100 x frame + row): 'val' pairs come from the central band
    of every frame, 'train' pairs from outside it, and both from every frame."""
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers.ssft import SsftSampler
    array = (100.0 * np.arange(3)[:, None, None, None] + np.arange(60)[None, None, :, None]
             + np.zeros((3, 12, 60, 40))).astype(np.float32)
    properties = {"case": "coded", "spacing": [3.0, 1.0, 1.0], "noise_sigma": 0.0}
    seen = {}
    for split in ("train", "val"):
        sampler = SsftSampler([(array, properties)], "slices", split=split, validation_fraction=0.4)
        values = np.concatenate([sampler.sample(batch_rng(1, i), 4, 16).targets.ravel() for i in range(10)])
        seen[split] = (set((values // 100).astype(int)), set((values % 100).astype(int)))
    band = set(range(18, 42))  # the middle 40 % of 60 rows
    assert seen["train"][0] == seen["val"][0] == {0, 1, 2}
    assert seen["val"][1] <= band and not seen["train"][1] & band


@pytest.mark.usefixtures("single_thread")
def test_a_short_ssft_run_on_a_dataset_with_a_4d_case(series, monkeypatch, capsys) -> None:
    _planned(monkeypatch, capsys, "training.validation_batches=1")
    isr_train(monkeypatch, capsys, "1", "ssft", "--workers", "0", "--from-scratch", "--iterations", "4")
    debug = load_json(series.results / DATASET / "ssft" / "debug.json")
    assert debug["iterations_done"] == 4
    assert (series.results / DATASET / "ssft" / "checkpoint_final.pth").is_file()


def test_a_fingerprint_of_before_with_one_case_per_frame_is_still_preprocessed(series) -> None:
    """Fingerprints written before time series were one case named each frame `<case>_t000` by `volume_index`."""
    from isrnet.experiment_planning.fingerprint import extract_fingerprint
    from isrnet.experiment_planning.planner import plan_dataset
    from isrnet.preprocessing.preprocessor import preprocess_dataset
    fingerprint = extract_fingerprint(DATASET, workers=1)
    cine = {key: value for key, value in fingerprint["cases"].pop("cine").items() if key not in ("frames", "time")}
    fingerprint["cases"] |= {f"cine_t00{t}": {**cine, "volume_index": t, "n_volumes": 3} for t in range(3)}
    plans = plan_dataset(fingerprint)
    assert plans.cases["cine_t001"].frames == 1
    preprocess_dataset(DATASET, fingerprint, plans, workers=1)
    for t in range(3):
        array, properties = _preprocessed(series, f"cine_t00{t}")
        assert array.shape == (8, 24, 24) and properties["frames"] == 1
        assert properties["offset"] + properties["scale"] * array.max() == pytest.approx(cine_frame(t).max())


def _write_series(folders, dataset: str, frames: int) -> None:
    volumes = [Volume(np.pad(smooth_volume((8, 40, 40), seed=t), ((0, 0), (4, 4), (4, 4))), SPACING)
               for t in range(frames)]
    write_volumes(volumes, folders.raw / dataset / "imagesTr" / "long.nii.gz", time_step_seconds=1.0)
    (folders.raw / dataset / "dataset.json").write_text(json.dumps({"name": dataset.split("_")[1],
                                                                    "file_ending": ".nii.gz",
                                                                    "slice_thickness_mm": 3.0}))


def _peaks(dataset: str) -> list[int]:
    """The most memory (bytes traced) that fingerprinting and planning + preprocessing `dataset` held."""
    from isrnet.experiment_planning import plan_experiment, preprocess
    from isrnet.experiment_planning.fingerprint import extract_fingerprint
    peaks = []
    for step in (lambda: extract_fingerprint(dataset, workers=1),
                 lambda: (plan_experiment(dataset), preprocess(dataset, workers=1))):
        tracemalloc.start()
        try:
            step()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return peaks


def test_fingerprint_and_preprocessing_hold_a_few_frames_not_the_series(folders) -> None:
    """A time series is read a frame at a time: 40 frames need about the memory 8 frames need (a frame here is
    8 x 48 x 48 float32), not five times as much."""
    frame_bytes = 8 * 48 * 48 * 4
    for dataset, frames in (("Dataset002_Short", 8), ("Dataset003_Long", 40)):
        _write_series(folders, dataset, frames)
    _peaks("Dataset002_Short")  # imports and caches first
    short, long = _peaks("Dataset002_Short"), _peaks("Dataset003_Long")
    for step, (few, many) in zip(("fingerprint", "preprocessing"), zip(short, long)):
        assert many < few + 4 * frame_bytes, (step, few / frame_bytes, many / frame_bytes)
    written = np.load(folders.preprocessed / "Dataset003_Long" / "data" / "long.npy", mmap_mode="r")
    assert written.shape == (40, 8, 48, 48)


def test_an_hr_mr_time_series_gives_mrft_one_volume_per_frame(folders) -> None:
    from isrnet.experiment_planning import plan_and_preprocess as plan_all
    from isrnet.preprocessing.preprocessor import load_training_cases
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers import build_sampler
    folder = folders.raw / "Dataset901_Hr"
    write_volumes([Volume(smooth_volume((24, 24, 24), seed=t), (1.0, 1.0, 1.0)) for t in range(2)],
                  folder / "imagesTr" / "series.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "Hr", "file_ending": ".nii.gz", "kind": "hr_mr"}))
    plans = plan_all("901", workers=1)
    cases = load_training_cases("Dataset901_Hr", plans)
    assert [(array.shape, properties["frame"]) for array, properties in cases] == [((24, 24, 24), 0),
                                                                                   ((24, 24, 24), 1)]
    batch = build_sampler(plans.sampler, cases, 4, "train").sample(batch_rng(0, 0), 2, 24)
    assert batch.context.shape == (2, 4, 24, 24)
