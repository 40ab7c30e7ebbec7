"""Time series through isr_predict: frames equal to the same volumes given as 3D files, the time axis kept, frames
batched with the same values, memory bounded by a few frames, a truncated frame refused with nothing written."""
from __future__ import annotations

import gc
import gzip
import json
import weakref
from pathlib import Path

import nibabel
import numpy as np
import pytest

from isrnet.imageio import Volume, read_volume
from isrnet.imageio.reader_writer import open_frame_sink, open_frames
from isrnet.imageio.time_series import FrameSource, TimeAxis
from isrnet.inference import PredictOptions, predict_paths
from isrnet.inference.outputs import OutputFormat
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.inference.slice_synthesis import Acceleration, synthesise_slices
from isrnet.pretrained import shipped_weights
from isrnet.training.adaptation import AdaptationOptions
from tests.conftest import rotation

SPACING = (4.0, 1.2, 1.1)  # slices first: 4 mm slices, about x3.5


def moving_frames(count: int, shape: tuple[int, int, int] = (6, 30, 28), seed: int = 0) -> list[Volume]:
    """A disc with texture that moves and grows from frame to frame, with noise (not a cubic-exact image)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    frames = []
    for t in range(count):
        radius = 8 + t + z
        disc = ((y - shape[1] / 2 - t) ** 2 + (x - shape[2] / 2) ** 2) < radius ** 2
        array = disc * (300 + 120 * np.sin(x / 2.5 + t) * np.cos(y / 3.0 + z)) + rng.normal(0, 8, shape)
        frames.append(Volume(array.astype(np.float32), SPACING, np.array([5.0, -3.0, 12.0]), rotation(0.2, 0.1, -0.3)))
    return frames


def write_series(frames: list[Volume], path: Path, time: TimeAxis) -> Path:
    with open_frame_sink(path, time) as sink:
        for frame in frames:
            sink.write(frame)
    return path


@pytest.fixture(scope="module")
def shipped() -> Path:
    return shipped_weights("mrft")


def test_4d_nifti_gives_its_frames_3d_values_and_keeps_time(tmp_path: Path, shipped: Path) -> None:
    frames = moving_frames(3)
    source = tmp_path / "in"
    write_series(frames, source / "cine.nii.gz", TimeAxis(3, 40.0, "msec"))
    for t, frame in enumerate(frames):
        write_series([frame], source / f"frame{t}.nii.gz", TimeAxis())
    settings = PredictionSettings(factor=3.0, thickness_mm=4.0)  # a 3D file would otherwise decide its own
    results = predict_paths(source, tmp_path / "out", shipped, PredictOptions(settings))
    assert not any(result.failed for result in results), [result.message for result in results]
    with open_frames(tmp_path / "out" / "cine.nii.gz") as output:
        assert len(output) == 3 and output.time.step == pytest.approx(40.0) and output.time.unit == "msec"
        for t in range(3):
            alone = read_volume(tmp_path / "out" / f"frame{t}.nii.gz")
            frame = output.frame(t)
            assert np.array_equal(frame.array, alone.array)
            assert np.allclose(frame.spacing, alone.spacing) and np.allclose(frame.origin, alone.origin)
            assert np.allclose(frame.direction, alone.direction, atol=1e-6)
    header = nibabel.load(tmp_path / "out" / "cine.nii.gz").header
    assert header.get_xyzt_units() == ("mm", "msec") and header["pixdim"][4] == pytest.approx(40.0)
    sidecar = json.loads((tmp_path / "out" / "cine.json").read_text())
    assert sidecar["volumes"] == 3 and sidecar["time"]["step"] == pytest.approx(40.0)
    assert sidecar["input_spacing"] == pytest.approx(list(frames[0].spacing))


def test_frames_batched_equal_frames_one_by_one(shipped: Path) -> None:
    predictor = Predictor.from_checkpoint(shipped)
    stacks = np.stack([frame.array / 300.0 for frame in moving_frames(3)]).astype(np.float32)
    for keep_input in (True, False):
        alone = np.stack([synthesise_slices(predictor.network, stack, 3.0, 1.0, keep_input=keep_input,
                                            acceleration=Acceleration(gaps_per_call=1)) for stack in stacks])
        batched = synthesise_slices(predictor.network, stacks, 3.0, 1.0, keep_input=keep_input,
                                    acceleration=Acceleration(gaps_per_call=7))
        assert batched.shape == alone.shape
        assert np.abs(batched - alone).max() < 1e-4  # float32 sums in another order
        assert np.abs(alone[0] - alone[1]).max() > 0.05  # the frames differ: a mix-up would show
    settings = PredictionSettings(factor=3.0, thickness_mm=4.0)
    volumes = moving_frames(4)
    _, profile = predictor.resolve(volumes[0], settings)
    one = [p.volume.array for p in predictor.run_frames(volumes, settings, profile)]
    predictor.acceleration = Acceleration(gaps_per_call=8, frames_per_call=3)
    three = [p.volume.array for p in predictor.run_frames(volumes, settings, profile)]
    assert len(three) == 4 and all(np.abs(a - b).max() < 1e-2 for a, b in zip(one, three))  # intensity units


def test_frames_whose_anatomy_lies_elsewhere_get_their_own_values_when_batched(shipped: Path) -> None:
    """The network runs on the union of a block's anatomy boxes; each gap must still keep its output only where it
    would alone (outside that, cubic), or a frame's values would depend on the frames beside it."""
    predictor = Predictor.from_checkpoint(shipped)
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:128, :128]
    stacks = np.abs(rng.normal(0, 0.05, (2, 6, 128, 128))).astype(np.float32)  # a noisy background
    for t, (cy, cx) in enumerate(((30, 30), (95, 90))):  # anatomy in opposite corners
        disc = (y - cy) ** 2 + (x - cx) ** 2 < 20 ** 2
        stacks[t][:, disc] += (0.8 + 0.2 * np.sin(x / 3.0))[disc]
    alone = np.stack([synthesise_slices(predictor.network, stack, 3.0, 1.0,
                                        acceleration=Acceleration(gaps_per_call=1)) for stack in stacks])
    batched = synthesise_slices(predictor.network, stacks, 3.0, 1.0, acceleration=Acceleration(gaps_per_call=10))
    assert np.abs(batched - alone).max() < 1e-4


class CountingFrames(FrameSource):
    """A time series made on demand, counting how many of its frames are alive at once."""

    def __init__(self, count: int) -> None:
        self.time, self.name = TimeAxis(count, 2.0, "sec"), "counted.nii.gz"
        self.alive: set[int] = set()
        self.most_alive = 0

    def frame(self, index: int) -> Volume:
        volume = moving_frames(1, seed=index)[0]
        self.alive.add(index)
        self.most_alive = max(self.most_alive, len(self.alive))
        weakref.finalize(volume.array, self.alive.discard, index)
        return volume


def test_memory_holds_a_few_frames_whatever_their_number(tmp_path: Path, shipped: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    counted = CountingFrames(12)
    monkeypatch.setattr("isrnet.inference.predict_files.open_frames", lambda path: counted)
    source = tmp_path / "counted.nii.gz"
    source.write_bytes(b"")  # the name only: frames come from CountingFrames
    gc.disable()  # frames must be freed by reference counting, as they go
    try:
        results = predict_paths(source, tmp_path / "out", shipped, PredictOptions(PredictionSettings(factor=3.0)))
    finally:
        gc.enable()
    assert not results[0].failed, results[0].message
    assert counted.most_alive <= 3, counted.most_alive
    assert len(open_frames(tmp_path / "out" / "counted.nii.gz")) == 12


def test_a_truncated_frame_is_refused_and_nothing_is_written(tmp_path: Path, shipped: Path) -> None:
    source = write_series(moving_frames(4), tmp_path / "in" / "run.nii", TimeAxis(4, 2.0, "sec"))
    data = source.read_bytes()
    source.write_bytes(data[: len(data) - len(data) // 3])  # the last frames cut off
    gzip_source = tmp_path / "in" / "gz.nii.gz"
    gzip_source.write_bytes(gzip.compress(data)[: len(gzip.compress(data)) * 2 // 3])
    results = predict_paths(tmp_path / "in", tmp_path / "out", shipped,
                            PredictOptions(PredictionSettings(factor=3.0)))
    assert all(result.failed for result in results)
    for result in results:
        assert "truncated" in result.message and "\n" not in result.message, result.message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no output, no partial file


def test_adaptation_of_a_time_series_keeps_its_time_axis(tmp_path: Path, shipped: Path) -> None:
    write_series(moving_frames(2), tmp_path / "in" / "dwi.nii.gz", TimeAxis(2, 3.5, "sec"))
    results = predict_paths(tmp_path / "in", tmp_path / "out", shipped,
                            PredictOptions(PredictionSettings(factor=3.0),
                                           adaptation=AdaptationOptions(iterations=2, workers=0)))
    assert not results[0].failed, results[0].message
    header = nibabel.load(tmp_path / "out" / "dwi.nii.gz").header
    assert header["dim"][4] == 2 and header["pixdim"][4] == pytest.approx(3.5)
    assert header.get_xyzt_units()[1] == "sec"
    assert "adaptation" in json.loads((tmp_path / "out" / "dwi.json").read_text())


def test_a_dicom_time_series_comes_out_as_one_with_its_temporal_positions(tmp_path: Path, shipped: Path) -> None:
    from tests.test_dicom_time_series import TRIGGERS, _dciodvfy_errors, cine, write_temporal_series
    frames = cine().astype(np.float32)
    frames = frames + 300 * np.sin(np.arange(frames.shape[-1]) / 2.0)  # texture, so the frames stay distinct
    write_temporal_series(tmp_path / "in" / "cine", frames.astype(np.int16))
    results = predict_paths(tmp_path / "in", tmp_path / "out", shipped,
                            PredictOptions(PredictionSettings(factor=2.0), output=OutputFormat("same")))
    assert not results[0].failed, results[0].message
    with open_frames(tmp_path / "out" / "cine") as written:
        assert len(written) == 3 and written.frame(0).shape[0] == 7  # 4 slices at x2
        assert written.time.frame_times_ms == pytest.approx(TRIGGERS)
    assert _dciodvfy_errors(tmp_path / "out" / "cine") == []
    sidecar = json.loads((tmp_path / "out" / "cine.json").read_text())
    assert sidecar["volumes"] == 3 and sidecar["format"] == "dicom series"


def test_a_4d_nifti_as_dicom_and_a_mosaic_file_without_an_ending(tmp_path: Path, shipped: Path) -> None:
    from tests.test_dicom_time_series import MOSAIC_SLICES, TILE, write_mosaic, write_temporal_series
    write_temporal_series(tmp_path / "reference", np.ones((1, 4, 8, 6), np.int16))
    write_series(moving_frames(2), tmp_path / "in" / "fmri.nii.gz", TimeAxis(2, 2.0, "sec"))
    results = predict_paths(tmp_path / "in" / "fmri.nii.gz", tmp_path / "out", shipped,
                            PredictOptions(PredictionSettings(factor=2.0),
                                           output=OutputFormat("dicom", tmp_path / "reference")))
    assert not results[0].failed, results[0].message
    with open_frames(tmp_path / "out" / "fmri") as written:
        assert len(written) == 2 and written.time.step_seconds == pytest.approx(2.0)
    volume = (np.arange(MOSAIC_SLICES)[:, None, None] * 50 + np.indices(TILE).sum(0) * 7 + 100).astype(np.uint16)
    write_mosaic(tmp_path / "mosaic" / "epi_0001", volume)  # Siemens names often have no ending
    results = predict_paths(tmp_path / "mosaic" / "epi_0001", tmp_path / "mosaic_out", shipped,
                            PredictOptions(PredictionSettings(factor=2.0)))
    assert not results[0].failed, results[0].message
    assert read_volume(tmp_path / "mosaic_out" / "epi_0001.nii.gz").shape[0] == 2 * MOSAIC_SLICES - 1
