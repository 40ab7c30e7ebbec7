"""The CUDA path (marker `cuda`, skipped without a GPU): a training step, prediction equal to the CPU's, AMP.

Run on a machine with a GPU: `bash run_tests.sh -m cuda` (and `python benchmarks/prediction_speed_memory.py
-device cuda` for the figures)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.utilities.psnr import psnr_from_mse
from isrnet.imageio import Volume
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.networks import build_network
from training_support import spheres_phantom

pytestmark = pytest.mark.cuda


def _perturbed_network() -> torch.nn.Module:
    torch.manual_seed(0)
    network = build_network(DEFAULT_NETWORK)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return network


def _volume() -> Volume:
    return Volume(spheres_phantom((12, 96, 80), seed=1), (4.0, 1.0, 1.0))


def test_a_training_step_on_cuda() -> None:
    network = build_network(DEFAULT_NETWORK).cuda()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    context, positions = torch.rand(2, 4, 48, 48, device="cuda"), torch.rand(2, 3, device="cuda")
    targets, conditioning = torch.rand(2, 3, 48, 48, device="cuda"), torch.rand(2, 2, device="cuda")
    loss = torch.nn.functional.l1_loss(network(context, positions, conditioning), targets)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss) and next(network.parameters()).grad is not None


def test_prediction_on_cuda_equals_the_cpu() -> None:
    network = _perturbed_network()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    cpu = Predictor(network, "perturbed, on the CPU").predict(_volume(), PredictionSettings())
    gpu_network = build_network(DEFAULT_NETWORK)
    gpu_network.load_state_dict(state)
    gpu = Predictor(gpu_network, "perturbed, on CUDA", device="cuda").predict(_volume(), PredictionSettings())
    scale = float(np.abs(cpu.array).max())
    assert np.abs(gpu.array - cpu.array).max() <= 1e-4 * scale


def test_amp_costs_no_accuracy() -> None:
    network = _perturbed_network()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    reference = spheres_phantom((45, 96, 80), seed=1)
    low = Volume(reference[::4], (4.0, 1.0, 1.0))
    results = {}
    for amp in (False, True):
        gpu_network = build_network(DEFAULT_NETWORK)
        gpu_network.load_state_dict(state)
        predictor = Predictor(gpu_network, "perturbed, on CUDA", device="cuda", amp=amp)
        out = predictor.predict(low, PredictionSettings(factor=4))
        mse = float(np.mean((out.array - reference[: out.shape[0]]) ** 2))
        results[amp] = psnr_from_mse(mse, float(reference.max() - reference.min()))
    assert abs(results[True] - results[False]) <= 0.01, results
