"""ssft learns from the target volume alone and beats cubic B-spline interpolation on held-out truth.

A 48^3 phantom at 1 mm is the truth; thick slices (every 4 mm, Gaussian profile of 4 mm FWHM) simulated
with isrnet.acquisition make the anisotropic input. ssft trains on that input only (the truth lies in
referenceTr/ as in a real dataset, and an audit hook checks that training never touches it); the
synthesised slices are then compared with the truth.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from scipy import ndimage

from isrnet.acquisition import simulate_thick_slices
from isrnet.imageio import read_volumes
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.networks import build_network
from training_support import (isr_train, load, plan_and_preprocess, single_thread,  # noqa: F401  (fixture)
                              spheres_phantom, write_target)

pytestmark = pytest.mark.usefixtures("single_thread")

STEP = 4
ITERATIONS = 110
MARGIN_DB = 0.5  # the trained network must beat B-spline interpolation by at least this much

_touched: list[str] = []
_watching = [False]


def _audit(event: str, args: tuple) -> None:
    if _watching[0] and event in ("open", "os.listdir", "os.scandir", "os.walk", "glob.glob"):
        if args and "referenceTr" in str(args[0]):
            _touched.append(f"{event} {args[0]}")


sys.addaudithook(_audit)


def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    return float(10.0 * np.log10(data_range ** 2 / np.mean((estimate.astype(np.float64) - truth) ** 2)))


def bspline(low: np.ndarray, count: int, factor: float) -> np.ndarray:
    """Cubic B-spline interpolation (scipy, with prefilter) along axis 0 at j / factor."""
    z, y, x = np.meshgrid(np.arange(count) / factor, np.arange(low.shape[1]), np.arange(low.shape[2]),
                          indexing="ij")
    return ndimage.map_coordinates(low.astype(np.float64), [z, y, x], order=3, mode="nearest")


def test_ssft_beats_bspline_interpolation(folders, monkeypatch, capsys) -> None:
    truth = spheres_phantom((48, 48, 48), seed=0).astype(np.float64)
    low, positions = simulate_thick_slices(truth, 0, STEP, float(STEP), "gaussian")
    assert low.shape == (12, 48, 48) and positions[-1] == 44
    write_target(folders.raw, "Dataset005_Phantom", {"phantom": low}, spacing=(4.0, 1.0, 1.0), thickness=4.0,
                 reference={"phantom": truth.astype(np.float32)})
    plan_and_preprocess(monkeypatch, capsys, "-d", "5", "--set", "training.patch_size=32",
                        "training.batch_size=8", "training.validation_every=1000")

    start = time.time()
    _touched.clear()
    _watching[0] = True
    try:
        isr_train(monkeypatch, capsys, "5", "ssft", "--from-scratch", "--iterations", str(ITERATIONS),
                  "--lr", "0.002", "--workers", "0")
    finally:
        _watching[0] = False
    seconds = time.time() - start
    assert not _touched, f"ssft read the reference: {_touched[:3]}"

    checkpoint = folders.results / "Dataset005_Phantom" / "ssft" / "checkpoint_final.pth"
    assert load(checkpoint)["iteration"] == ITERATIONS
    volume = read_volumes(folders.raw / "Dataset005_Phantom" / "imagesTr" / "phantom.nii.gz")[0]
    predictor = Predictor.from_checkpoint(checkpoint)
    result = predictor.predict(volume, PredictionSettings())  # factor from the spacing: 4
    output = result.array
    count = (low.shape[0] - 1) * STEP + 1
    assert output.shape == (count, 48, 48) and result.spacing == pytest.approx((1.0, 1.0, 1.0))
    synthesised = np.array([j for j in range(count) if j % STEP])  # output j lies at truth slice j
    target = truth[synthesised]
    data_range = float(truth.max() - truth.min())
    untrained = Predictor(build_network(load(checkpoint)["network"]), "untrained").predict(volume).array

    model_db = psnr(output[synthesised], target, data_range)
    bspline_db = psnr(bspline(low, count, STEP)[synthesised], target, data_range)
    cubic_db = psnr(untrained[synthesised], target, data_range)
    print(f"ssft {ITERATIONS} iterations in {seconds:.1f} s: PSNR {model_db:.2f} dB, B-spline {bspline_db:.2f} dB, "
          f"Catmull-Rom (untrained) {cubic_db:.2f} dB")
    assert model_db > bspline_db + MARGIN_DB, (model_db, bspline_db)
    assert model_db > cubic_db + MARGIN_DB, (model_db, cubic_db)
    np.testing.assert_array_equal(output[::STEP], volume.array)  # input slices kept exactly
