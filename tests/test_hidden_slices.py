"""The hidden-slice evaluation: real slices removed, predicted and scored (tiny volumes, few iterations)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from isrnet.errors import IsrnetError
from isrnet.benchmarking import hidden_slices_run
from isrnet.evaluation.baselines import classic_upsample
from isrnet.evaluation.hidden_slices import (SAMPLES_PER_SLICE, blur_weights, kept_slice_count, score_output,
                                             thin_case)
from isrnet.benchmarking.hidden_slices_run import HiddenSliceOptions, run_hidden_slices
from isrnet.imageio import Volume, read_volume, write_volume
from isrnet.imageio.geometry import restore_axes, slices_first, upsampled_volume
from training_support import smooth_volume

SLICES, SIZE = 21, 24


def _head(shape: tuple[int, ...]) -> np.ndarray:
    """A ball-shaped support (the 'head') on a zero background."""
    grid = np.indices(shape, dtype=np.float64)
    centre = (np.array(shape) - 1) / 2.0
    return sum(((g - c) / (0.45 * n)) ** 2 for g, c, n in zip(grid[1:], centre[1:], shape[1:])) < 1.0


def _signal(z: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """A smooth pattern along z (in slices), blurred analytically by a Gaussian of `sigma` slices along z."""
    value = 400.0
    for k, amplitude, phase in ((0.9, 150.0, 0.3), (1.7, 80.0, 1.1), (2.6, 40.0, 2.0)):
        value = value + amplitude * np.exp(-0.5 * (k * sigma) ** 2) * np.sin(k * z + phase + 0.2 * y - 0.1 * x)
    return value


def _dense(case, function) -> Volume:
    """A method's output on the thinned volume's grid at factor `case.samples`, from a function of z (scan slices)."""
    stack = slices_first(case.thinned, case.slice_axis)
    count = (stack.shape[0] - 1) * case.samples + 1
    z, y, x = np.meshgrid(np.arange(count) / SAMPLES_PER_SLICE, np.arange(SIZE), np.arange(SIZE), indexing="ij")
    array = (function(z, y, x) * _head((count, SIZE, SIZE))).astype(np.float32)
    return restore_axes(upsampled_volume(stack, array, case.samples), case.slice_axis)


def _scan(sigma: float, noise: float = 0.0) -> Volume:
    z, y, x = np.meshgrid(np.arange(SLICES, dtype=float), np.arange(SIZE), np.arange(SIZE), indexing="ij")
    array = _signal(z, y, x, sigma) + noise * np.random.default_rng(0).standard_normal(z.shape)
    return Volume((array * _head(z.shape)).astype(np.float32), (3.0, 1.0, 1.0))


def test_thinning_keeps_every_kth_slice_in_the_scans_geometry() -> None:
    volume = smooth_volume((SLICES, SIZE, SIZE), seed=1)
    volume = Volume(volume, (3.0, 1.0, 1.0), origin=(5.0, -2.0, 1.0))
    case = thin_case("c", volume, 0, keep_every=3)
    assert kept_slice_count(SLICES, 3) == 7 and case.thinned.shape == (7, SIZE, SIZE)
    assert np.array_equal(case.thinned.array, volume.array[::3][:7])
    assert case.thinned.spacing == (9.0, 1.0, 1.0) and np.allclose(case.thinned.origin, volume.origin)
    assert list(case.removed) == [i for i in range(19) if i % 3] and np.array_equal(case.truth, volume.array[case.removed])


def test_blur_weights_sum_to_one_and_zero_width_samples_the_signal() -> None:
    weights = blur_weights(41, 0.25, np.array([1.0, 3.0, 9.0]), 0.0)
    assert np.allclose(weights.sum(axis=1), 1.0) and weights[1, 12] == 1.0
    wide = blur_weights(41, 0.25, np.array([1.0, 5.0]), 2.0)
    assert np.allclose(wide.sum(axis=1), 1.0) and (wide[1] > 0).sum() > 10


def test_a_method_that_returns_the_removed_slices_exactly_scores_far_above_the_others() -> None:
    case = thin_case("c", _scan(sigma=0.6), 0)
    exact = score_output(case, _dense(case, lambda z, y, x: _signal(z, y, x, 0.6)))
    cubic = score_output(case, classic_upsample(case.thinned, case.samples, 0, "cubic B-spline"))
    linear = score_output(case, classic_upsample(case.thinned, case.samples, 0, "linear"))
    assert exact.psnr > max(cubic.psnr, linear.psnr) + 20.0 and exact.fwhm == 0.0
    assert np.isfinite(cubic.psnr) and cubic.psnr > 10.0


def test_the_width_search_gives_a_sharp_prediction_the_blur_of_the_thick_slices() -> None:
    """Truth: thick slices (FWHM 1.5 slices) with noise. A method predicting the sharp underlying signal loses
    badly when compared unblurred, but with the width search it scores as well as the same signal already blurred
    by the true profile, at the true width."""
    true_fwhm = 1.5
    sigma = true_fwhm / 2.3548
    case = thin_case("c", _scan(sigma, noise=5.0), 0)
    sharp = score_output(case, _dense(case, lambda z, y, x: _signal(z, y, x)))
    blurred = score_output(case, _dense(case, lambda z, y, x: _signal(z, y, x, sigma)))
    assert sharp.psnr > sharp.psnr_unblurred + 2.0
    assert sharp.psnr >= blurred.psnr - 0.5  # the linear reading of samples 1/4 slice apart adds a little blur
    assert abs(sharp.fwhm - true_fwhm) <= 0.25 and blurred.fwhm <= 0.5
    assert not sharp.on_edge and max(sharp.curve.values()) == sharp.psnr


def test_a_case_with_too_few_slices_gets_a_one_line_refusal(tmp_path: Path) -> None:
    volume = Volume(smooth_volume((6, SIZE, SIZE)), (4.0, 1.0, 1.0))
    with pytest.raises(IsrnetError, match="6 slices along the slice axis; keeping every 2nd leaves 3, fewer than"):
        thin_case("short", volume, 0, keep_every=2)
    write_volume(volume, tmp_path / "short.nii.gz")
    done = subprocess.run([sys.executable, "-c", "from isrnet.cli.benchmark import main; main()", "-i",
                           str(tmp_path / "short.nii.gz"), "--hidden-slices", "--no-ssft", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip() and "is not set, using" not in line]
    assert done.returncode == 1 and len(lines) == 1 and "leaves 3, fewer than the 4 needed" in lines[0], done.stderr
    assert not (tmp_path / "o").exists()


def test_the_seed_reaches_the_hidden_slice_run_and_is_refused_without_it(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    import isrnet.benchmarking
    from isrnet.cli import benchmark
    given: list[HiddenSliceOptions] = []
    monkeypatch.setattr(isrnet.benchmarking, "run_hidden_slices",
                        lambda source, options: given.append(options) or type("Result", (), {"text": ""})())
    monkeypatch.setattr(sys, "argv", ["isr_benchmark", "-i", "scans", "--hidden-slices", "--seed", "7"])
    with pytest.raises(SystemExit) as ended:
        benchmark.main()
    assert ended.value.code == 0 and given[0].seed == 7
    monkeypatch.setattr(sys, "argv", ["isr_benchmark", "-d", "001", "--seed", "7"])
    with pytest.raises(SystemExit) as ended:
        benchmark.main()
    assert ended.value.code == 2 and "--seed only work(s) with --hidden-slices" in capsys.readouterr().err


def _dicom_series(folder: Path, volume: np.ndarray, spacing: float) -> None:
    folder.mkdir()
    for k in range(volume.shape[0]):
        image = sitk.GetImageFromArray(volume[k].astype(np.int16))
        image.SetSpacing((1.0, 1.0))
        for tag, value in (("0008|0060", "MR"), ("0020|000d", "1.2.3"), ("0020|000e", "1.2.3.4"),
                           ("0020|0032", f"0\\0\\{spacing * k}"), ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0020|0013", str(k + 1)), ("0018|0050", str(spacing)), ("0028|0030", "1\\1")):
            image.SetMetaData(tag, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(image)


def test_dicom_input_is_evaluated_and_never_written_to(tmp_path: Path) -> None:
    array = _scan(sigma=0.6).array
    _dicom_series(tmp_path / "series", array, 3.0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "series").iterdir()}
    result = run_hidden_slices(tmp_path / "series", HiddenSliceOptions(ssft=False, output=tmp_path / "out"),
                               log=lambda line: None)
    assert {p.name: p.read_bytes() for p in (tmp_path / "series").iterdir()} == before
    methods = list(result.table.method)
    assert methods == ["linear", "cubic B-spline", "isrnet shipped mrft weights (no fine-tuning)"]
    assert set(result.table.thickness_source) == {"dicom"} and (result.table.thickness_mm == 3.0).all()
    assert (result.table.network_factor == 6.0).all() and (result.table.user_factor == 3.0).all()
    assert result.table.gain_vs_best_classic_dB[result.table.role == "classic"].max() == 0.0
    for name in ("hidden_slices.csv", "hidden_slices_summary.csv", "hidden_slices_curves.csv", "hidden_slices.md",
                 "blur_search.png", "qc_hidden_series.png"):
        assert (tmp_path / "out" / name).stat().st_size > 100, name
    assert "worked at 2 x the scans' own factor" in result.text
    with pytest.raises(IsrnetError, match="must lie outside the input"):
        run_hidden_slices(tmp_path / "series", HiddenSliceOptions(ssft=False, output=tmp_path / "series" / "o"))


_touched: list[str] = []  # every file or folder opened or listed while _watching
_watching = [False]


def _audit(event: str, args: tuple) -> None:
    if _watching[0] and event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, Path)):
        _touched.append(str(args[0]))


sys.addaudithook(_audit)


def test_ssft_on_the_thinned_scans_never_reads_the_removed_slices(folders, monkeypatch) -> None:
    """A dataset without referenceTr: its thinned copy is planned, preprocessed and trained in a workspace, and
    that training opens nothing of the dataset's own files (an audit hook watches), so it never sees a removed
    slice; what it trains on holds the kept slices only."""
    raw = folders.raw / "Dataset042_Real"
    scans = {name: Volume(smooth_volume((SLICES, 32, 32), seed=seed), (3.0, 1.0, 1.0)) for seed, name in
             enumerate(("a", "b"))}
    for name, volume in scans.items():
        write_volume(volume, raw / "imagesTr" / f"{name}.nii.gz")
    (raw / "dataset.json").write_text(json.dumps({"name": "Real", "file_ending": ".nii.gz"}))
    real_train = hidden_slices_run.train_on_thinned

    def watched_training(workspace, dataset, init, options):
        _touched.clear()
        _watching[0] = True
        try:
            return real_train(workspace, dataset, init, options)
        finally:
            _watching[0] = False

    monkeypatch.setattr(hidden_slices_run, "train_on_thinned", watched_training)
    overrides = {"training.patch_size": 24, "training.batch_size": 2, "training.validation_every": 3}
    result = run_hidden_slices("42", HiddenSliceOptions(iterations=3, plans_overrides=overrides, classic=("linear",)),
                               log=lambda line: None)
    workspace = folders.results / "Dataset042_Real" / "hidden_slices" / "workspace"
    assert any(path.startswith(str(workspace / "preprocessed")) for path in _touched)  # the hook sees the training
    own = [path for path in _touched if path.startswith((str(raw), str(folders.preprocessed)))]
    assert not own, f"ssft on the thinned scans read the dataset's own files: {own[:3]}"
    for name, volume in scans.items():
        trained_on = read_volume(workspace / "raw" / "Dataset042_RealKeepEvery2" / "imagesTr" / f"{name}.nii.gz")
        assert np.array_equal(trained_on.array, volume.array[::2]) and trained_on.spacing[0] == 6.0
    assert (workspace / "results" / "Dataset042_RealKeepEvery2" / "ssft" / "checkpoint_final.pth").is_file()
    assert "isrnet ssft on the thinned scans" in set(result.table.method)
    assert not (folders.preprocessed / "Dataset042_Real").exists()  # the user's dataset is left as it was
    run = workspace / "results" / "Dataset042_RealKeepEvery2" / "ssft"
    from isrnet.runs import DEBUG_FILE, RunRecord
    methods = 4 if RunRecord.load(run / DEBUG_FILE).kept_start else 3  # + what the guard turned down, when it did
    assert len(result.table) == 2 * methods and set(result.summary.cases) == {2}


def test_dense_sampling_is_the_same_synthesis_at_more_positions() -> None:
    """conditioning_factor: asking for 2x the output slices while telling the network the real gap gives the
    same slices where the two grids meet (what the hidden-slice score reads as a continuous signal)."""
    from isrnet.inference.predictor import PredictionSettings, Predictor
    from isrnet.pretrained import shipped_weights
    predictor = Predictor.from_checkpoint(shipped_weights("mrft"))
    volume = Volume(smooth_volume((8, 32, 32), seed=3), (4.0, 1.0, 1.0))
    plain = predictor.predict(volume, PredictionSettings(factor=4.0, thickness_mm=4.0))
    dense = predictor.predict(volume, PredictionSettings(factor=8.0, thickness_mm=4.0, conditioning_factor=4.0))
    told_wrong = predictor.predict(volume, PredictionSettings(factor=8.0, thickness_mm=4.0))
    assert dense.shape[0] == 2 * plain.shape[0] - 1 and dense.spacing[0] == 0.5
    assert np.allclose(dense.array[::2], plain.array, atol=1e-4 * float(np.abs(plain.array).max()))
    assert not np.allclose(told_wrong.array[::2], plain.array, atol=1e-4 * float(np.abs(plain.array).max()))


def test_an_isotropic_scan_hides_slices_along_its_stacking_axis() -> None:
    from isrnet.evaluation.hidden_slices import hidden_slice_axis
    assert hidden_slice_axis((1.5, 1.5, 1.5)) == 0  # a 2D multi-slice scan at 1.5 mm iso: the file's slices
    assert hidden_slice_axis((3.6, 3.25, 3.25)) == 0 and hidden_slice_axis((1.0, 1.0, 3.0)) == 2
    assert hidden_slice_axis((1.0, 1.016, 1.016)) == 2
