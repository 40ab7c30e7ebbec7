"""Stages 1 and 2 end to end on tiny data: video and mrft train, chain, and reject bad input clearly."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from isrnet.imageio import Volume, write_volumes
from tests.training_support import debug_of, isr_train, load, plan_and_preprocess, single_thread, small_plan_overrides  # noqa: F401


def moving_blobs(frames: int, size: int = 40, seed: int = 0) -> np.ndarray:
    """Smooth blobs drifting a pixel per frame: frame interpolation has something to learn."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    centres, speeds = rng.uniform(5, size - 5, (6, 2)), rng.uniform(-1, 1, (6, 2))
    video = np.zeros((frames, size, size), np.float32)
    for t in range(frames):
        for (cy, cx), (vy, vx) in zip(centres, speeds):
            video[t] += np.exp(-(((y - cy - vy * t) ** 2 + (x - cx - vx * t) ** 2) / 18.0))
    return np.clip(video / video.max() * 255, 0, 255).astype(np.uint8)


def write_video_dataset(raw, name="Dataset900_Video", sizes=(40, 40)) -> None:
    folder = raw / name
    for clip, seed in (("a", 0), ("b", 1)):
        frames = moving_blobs(40, seed=seed)
        (folder / "imagesTr" / clip).mkdir(parents=True)
        for index, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / "imagesTr" / clip / f"frame_{index:04d}.png")
    (folder / "dataset.json").write_text(json.dumps({"name": "Video", "file_ending": ".png", "kind": "video"}))


def write_hr_dataset(raw, spacing=(1.0, 1.0, 1.0)) -> None:
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, 36)] * 3, indexing="ij")
    head = ((x ** 2 + y ** 2 + z ** 2) < 0.8) * (1 + 0.5 * np.sin(8 * x) * np.cos(6 * y + 4 * z))
    folder = raw / "Dataset901_HR"
    write_volumes([Volume((100 * head).astype(np.float32), spacing)], folder / "imagesTr" / "head.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "HR", "file_ending": ".nii.gz", "kind": "hr_mr"}))


def quarter_means(losses: list[float]) -> tuple[float, float]:
    quarter = max(1, len(losses) // 4)
    return float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))


def test_video_then_mrft_train_and_chain(folders, monkeypatch, capsys, single_thread) -> None:
    write_video_dataset(folders.raw)
    write_hr_dataset(folders.raw)
    plan_and_preprocess(monkeypatch, capsys, "-d", "900", "901", "--set", *small_plan_overrides(patch=24, batch=4))
    isr_train(monkeypatch, capsys, "900", "video", "--iterations", "40", "--workers", "0")
    video = load(folders.results / "Dataset900_Video" / "video" / "checkpoint_final.pth")
    first, last = quarter_means(video["history"]["loss"])
    assert last < first, f"video loss did not decrease: {first:.4f} -> {last:.4f}"
    isr_train(monkeypatch, capsys, "901", "mrft", "--iterations", "40", "--workers", "0")
    run = folders.results / "Dataset901_HR" / "mrft"
    assert "video result of dataset 900" in debug_of(run)["initial_weights"]
    first, last = quarter_means(load(run / "checkpoint_final.pth")["history"]["loss"])
    assert last < first, f"mrft loss did not decrease: {first:.4f} -> {last:.4f}"
    assert load(run / "checkpoint_final.pth")["trained_factors"] == [2.0, 8.0]


def test_mrft_from_scratch_with_a_notice_when_no_video(folders, monkeypatch, capsys, single_thread) -> None:
    write_hr_dataset(folders.raw)
    plan_and_preprocess(monkeypatch, capsys, "-d", "901", "--set", *small_plan_overrides(patch=24, batch=2))
    isr_train(monkeypatch, capsys, "901", "mrft", "--iterations", "3", "--workers", "0")
    assert "from scratch: no video result" in debug_of(folders.results / "Dataset901_HR" / "mrft")["initial_weights"]


def test_non_isotropic_hr_mr_is_named(folders, monkeypatch, capsys) -> None:
    write_hr_dataset(folders.raw, spacing=(1.0, 1.0, 1.5))
    result = plan_and_preprocess(monkeypatch, capsys, "-d", "901", expect_ok=False)
    assert result.code == 1 and "head" in result.error and "not isotropic" in result.error


def test_frame_size_mismatch_inside_a_clip(folders, monkeypatch, capsys) -> None:
    write_video_dataset(folders.raw)
    odd = folders.raw / "Dataset900_Video" / "imagesTr" / "a" / "frame_0005.png"
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(odd)
    result = plan_and_preprocess(monkeypatch, capsys, "-d", "900", expect_ok=False)
    assert result.code == 1 and "frame_0005.png" in result.error and "size" in result.error


def test_video_shorter_than_any_sample_is_an_error(folders, monkeypatch, capsys) -> None:
    folder = folders.raw / "Dataset900_Video"
    (folder / "imagesTr" / "tiny").mkdir(parents=True)
    for index in range(3):
        Image.fromarray(moving_blobs(3)[index]).save(folder / "imagesTr" / "tiny" / f"f{index}.png")
    (folder / "dataset.json").write_text(json.dumps({"name": "Video", "file_ending": ".png", "kind": "video"}))
    plan_and_preprocess(monkeypatch, capsys, "-d", "900", "--set", *small_plan_overrides(patch=24, batch=2))
    result = isr_train(monkeypatch, capsys, "900", "video", "--iterations", "2", "--workers", "0", expect_ok=False)
    assert result.code == 1 and "no clip" in result.error
