"""The weights shipped in isrnet/pretrained/: small, loadable without trusting pickles, documented, and useful."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.acquisition import simulate_thick_slices
from isrnet.evaluation.baselines import classic_upsample
from isrnet.evaluation.metrics import compare
from isrnet.imageio import Volume
from isrnet.imageio.geometry import input_slice_positions
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.pretrained import FOLDER, shipped_weights
from isrnet.training.checkpointing import check_compatible
from training_support import single_thread, spheres_phantom  # noqa: F401  (fixture)

STAGES = {"video": ("Dataset900_Video", "isr_train 900 video"), "mrft": ("Dataset901_HRMR", "isr_train 901 mrft")}


@pytest.mark.parametrize("stage", STAGES)
def test_shipped_weights_fit_the_default_network_and_carry_their_provenance(stage) -> None:
    weights = shipped_weights(stage)
    assert weights is not None, f"isrnet/pretrained/{stage}.pth is missing"
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    assert "optimizer" not in checkpoint and checkpoint["stage"] == stage
    check_compatible(checkpoint, DEFAULT_NETWORK, str(weights))
    record = json.loads((FOLDER / f"{stage}.json").read_text(encoding="utf-8"))
    dataset, command = STAGES[stage]
    assert record["stage"] == stage and record["dataset"]["name"] == dataset and record["command"].startswith(command)
    assert re.fullmatch(r"[0-9a-f]{40}", record["git_commit"]), record["git_commit"]
    assert record["iterations"] > 100 and record["wall_time_minutes"] > 1
    assert record["validation"]["final"]["gain_vs_cubic"] > 0
    assert record["file"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_shipped_weights_are_small() -> None:
    assert sum(p.stat().st_size for p in FOLDER.iterdir() if p.suffix in (".pth", ".json")) < 10 * 2 ** 20


def test_mrft_record_holds_its_check_on_unseen_data() -> None:
    record = json.loads((FOLDER / "mrft.json").read_text(encoding="utf-8"))
    methods = record["evaluation"]["methods"]
    assert record["evaluation"]["dataset"] == "Dataset001_DemoBrain"
    mrft = next(name for name in methods if "mrft" in name)
    assert methods[mrft]["psnr_synth"] > methods["cubic B-spline"]["psnr_synth"]
    chain = []  # mrft with acquisition physics <- mrft on idealised pairs <- video
    while record is not None:
        chain.append(record["stage"])
        record = record.get("initialised_from")
    assert chain[-1] == "video" and set(chain[:-1]) == {"mrft"}, chain


@pytest.mark.parametrize("contrast", ["bright balls (T1-like)", "inverted (T2-like)"])
def test_shipped_mrft_alone_beats_cubic_on_a_phantom_in_two_contrasts(single_thread, contrast) -> None:
    truth = spheres_phantom((32, 48, 48), seed=0)
    if contrast.startswith("inverted"):  # dark structures in a bright head: the tissue order reversed
        head = np.ones_like(truth, dtype=bool)
        head[:, :2], head[:, -2:], head[:, :, :2], head[:, :, -2:] = False, False, False, False
        truth = np.where(head, 1100.0 - truth, 0.0).astype(np.float32)
    low = Volume(simulate_thick_slices(truth, 0, 4, 4.0)[0], (4.0, 1.0, 1.0))
    reference = Volume(truth, (1.0, 1.0, 1.0))
    output = Predictor.from_checkpoint(shipped_weights("mrft")).predict(low, PredictionSettings(thickness_mm=4.0))
    cubic = classic_upsample(low, 4, 0, "cubic B-spline")
    positions = input_slice_positions(low, 0)
    gain = compare(output, reference, 0, positions)["psnr_synth"] - compare(cubic, reference, 0, positions)["psnr_synth"]
    assert gain > 1.0, f"shipped mrft only {gain:+.2f} dB over cubic on {contrast}"
