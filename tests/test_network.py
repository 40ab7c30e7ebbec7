"""SliceSynthNet and whole-stack slice synthesis: cubic at start, any factor, one encoding per slice."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.imageio.volume import Volume
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.inference.slice_synthesis import synthesise_slices
from isrnet.networks import build_network
from isrnet.networks.slice_synth import SliceSynthNet, conditioning_vector
from training_support import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = {"context": 4, "encoder_channels": 6, "encoder_blocks": 1, "fusion_channels": 8, "fusion_blocks": 1,
         "mixer_channels": 4, "decoder_channels": 6}


def catmull_rom(p0, p1, p2, p3, t):
    """Independent Catmull-Rom spline between p1 (t = 0) and p2 (t = 1), in its textbook matrix form."""
    return 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)


def cubic_stack(stack: np.ndarray, factor: float) -> np.ndarray:
    """Catmull-Rom along axis 0 at j / factor, edge slices repeated: the untrained network's output."""
    n = stack.shape[0]
    out = []
    for j in range(int(math.floor((n - 1) * factor + 1e-6)) + 1):
        p = j / factor
        gap = min(int(math.floor(p + 1e-9)), n - 2)
        t = p - gap
        s = [stack[min(max(i, 0), n - 1)].astype(np.float64) for i in range(gap - 1, gap + 3)]
        out.append(catmull_rom(*s, t))
    return np.stack(out)


def perturbed(network: SliceSynthNet, seed: int = 0) -> SliceSynthNet:
    """A network whose output differs from cubic (the zero-initialised last layer gets random weights)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        last = network.decoder[-1]
        last.weight.copy_(0.05 * torch.randn(last.weight.shape, generator=generator))
        last.bias.fill_(0.01)
    return network.eval()


@pytest.fixture
def stack() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.random((7, 20, 18)).astype(np.float32)


def test_untrained_network_is_catmull_rom_interpolation() -> None:
    torch.manual_seed(0)
    network = SliceSynthNet(**SMALL).eval()
    context = torch.rand(3, 4, 16, 16)
    positions = torch.tensor([[0.0, 0.3, 1.0], [0.5, 0.25, 0.75], [0.1, 0.9, 0.6]])
    conditioning = torch.tensor([[0.5, 1.0], [0.3, 0.0], [1.0, 1.5]])
    with torch.no_grad():
        output = network(context, positions, conditioning)
    c = context.double()
    t = positions.double()[:, :, None, None]
    expected = catmull_rom(c[:, None, 0], c[:, None, 1], c[:, None, 2], c[:, None, 3], t)
    assert output.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(output.numpy(), expected.numpy(), atol=1e-5)
    # t = 0 and t = 1 are the central slices themselves
    np.testing.assert_allclose(output[0, 0].numpy(), context[0, 1].numpy(), atol=1e-6)
    np.testing.assert_allclose(output[0, 2].numpy(), context[0, 2].numpy(), atol=1e-6)


def test_default_network_is_zero_initialised_at_its_last_layer() -> None:
    network = build_network(DEFAULT_NETWORK)
    assert torch.count_nonzero(network.decoder[-1].weight) == 0
    assert torch.count_nonzero(network.decoder[-1].bias) == 0


def test_context_must_be_even_and_at_least_four() -> None:
    for context in (2, 5):
        with pytest.raises(ValueError, match="context"):
            SliceSynthNet(**(SMALL | {"context": context}))


@pytest.mark.parametrize("factor", [4.0, 2.5, 1.7, 3.3])
def test_untrained_stack_synthesis_is_cubic_for_any_factor(stack: np.ndarray, factor: float) -> None:
    network = SliceSynthNet(**SMALL)
    output = synthesise_slices(network, stack, factor, keep_input=False)
    count = int(math.floor((stack.shape[0] - 1) * factor)) + 1
    assert output.shape == (count,) + stack.shape[1:]
    np.testing.assert_allclose(output, cubic_stack(stack, factor), atol=1e-5)


@pytest.mark.parametrize("factor", [4.0, 2.5, 1.7])
def test_each_input_slice_is_encoded_once(stack: np.ndarray, factor: float) -> None:
    network = perturbed(SliceSynthNet(**SMALL))
    calls: list[int] = []
    handle = network.encoder.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    try:
        synthesise_slices(network, stack, factor, keep_input=True)
    finally:
        handle.remove()
    assert sum(calls) == stack.shape[0], f"encoder saw {sum(calls)} slices for a {stack.shape[0]}-slice stack"


def test_stack_synthesis_is_the_network_applied_gap_by_gap(stack: np.ndarray) -> None:
    """Streaming (cached encodings, clamped edges) equals calling the network on each gap's context."""
    network = perturbed(SliceSynthNet(**SMALL), seed=1)
    factor, n = 2.5, stack.shape[0]
    output = synthesise_slices(network, stack, factor, thickness_ratio=1.2, keep_input=False)
    conditioning = torch.tensor([conditioning_vector(factor, 1.2)])
    for j in (0, 1, 3, 7, len(output) - 1):
        p = j / factor
        gap = min(int(math.floor(p + 1e-9)), n - 2)
        window = [min(max(i, 0), n - 1) for i in range(gap - 1, gap + 3)]
        with torch.no_grad():
            expected = network(torch.from_numpy(stack[window])[None], torch.tensor([[p - gap]], dtype=torch.float32),
                               conditioning)[0, 0].numpy()
        np.testing.assert_allclose(output[j], expected, atol=1e-5)
    assert not np.allclose(output, cubic_stack(stack, factor), atol=1e-4)  # the perturbation is visible


@pytest.mark.parametrize("factor", [4.0, 2.0, 2.5])
def test_keep_input_copies_input_slices_exactly(stack: np.ndarray, factor: float) -> None:
    network = perturbed(SliceSynthNet(**SMALL), seed=2)
    kept = synthesise_slices(network, stack, factor, keep_input=True)
    free = synthesise_slices(network, stack, factor, keep_input=False)
    assert kept.shape == free.shape
    positions = np.arange(len(kept)) / factor
    coinciding = np.flatnonzero(np.abs(positions - np.round(positions)) < 1e-6)
    assert len(coinciding) >= 3
    for j in coinciding:
        np.testing.assert_array_equal(kept[j], stack[int(round(positions[j]))])
        assert not np.array_equal(free[j], stack[int(round(positions[j]))])  # the network alone would not
    others = np.setdiff1d(np.arange(len(kept)), coinciding)
    np.testing.assert_allclose(kept[others], free[others], atol=1e-6)


def test_tta_of_untrained_network_is_still_cubic(stack: np.ndarray) -> None:
    network = SliceSynthNet(**SMALL)
    output = synthesise_slices(network, stack, 3.0, keep_input=False, tta=True)
    np.testing.assert_allclose(output, cubic_stack(stack, 3.0), atol=1e-5)


def test_predictor_keeps_input_voxels_and_geometry() -> None:
    rng = np.random.default_rng(5)
    array = (200.0 * rng.random((16, 14, 6)) + 10.0).astype(np.float32)  # slice axis 2 (3 mm)
    volume = Volume(array, (0.8, 0.8, 3.0), np.array([1.0, 2.0, 3.0]))
    predictor = Predictor(perturbed(SliceSynthNet(**SMALL), seed=3), "test")
    result = predictor.predict(volume, PredictionSettings(factor=2.5))
    assert result.shape == (16, 14, int(math.floor(5 * 2.5)) + 1)
    assert result.spacing == pytest.approx((0.8, 0.8, 1.2))
    np.testing.assert_allclose(result.origin, volume.origin)
    for k in (0, 2, 4):  # output slices 0, 5, 10 coincide with input slices 0, 2, 4
        np.testing.assert_array_equal(result.array[:, :, int(k * 2.5)], array[:, :, k])
    untrained = Predictor(SliceSynthNet(**SMALL), "untrained").predict(volume, PredictionSettings(factor=2.5))
    expected = np.moveaxis(cubic_stack(np.moveaxis(array, 2, 0), 2.5), 0, 2)
    np.testing.assert_allclose(untrained.array, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("factor, keep_input, tta", [(4.0, True, False), (2.5, False, False), (3.3, True, True)])
def test_batched_synthesis_equals_gap_by_gap(stack: np.ndarray, factor: float, keep_input: bool, tta: bool) -> None:
    """Several gaps per network call (and channels-last) give the float32 gap-by-gap result within 1e-5."""
    from isrnet.inference.slice_synthesis import Acceleration
    network = perturbed(SliceSynthNet(**SMALL), seed=3)
    reference = synthesise_slices(network, stack, factor, 1.1, keep_input=keep_input, tta=tta,
                                  acceleration=Acceleration(gaps_per_call=1, channels_last=False))
    for gaps in (1, 2, 3, 7, 64):
        batched = synthesise_slices(network, stack, factor, 1.1, keep_input=keep_input, tta=tta,
                                    acceleration=Acceleration(gaps_per_call=gaps, channels_last=True))
        np.testing.assert_allclose(batched, reference, atol=1e-5, err_msg=f"{gaps} gaps per call")
    assert not np.allclose(reference, cubic_stack(stack, factor), atol=1e-4)  # the network really contributes


def test_network_runs_only_around_anatomy_and_agrees_with_the_whole_slice_there() -> None:
    """Cropping to each block's anatomy changes nothing near the anatomy; background-only gaps are cubic."""
    from scipy import ndimage

    from isrnet.inference.slice_synthesis import Acceleration, anatomy_boxes, anatomy_mask
    rng = np.random.default_rng(7)
    stack = np.zeros((10, 150, 140), np.float32)
    stack[:6, 60:85, 50:80] = 0.5 + 0.5 * rng.random((6, 25, 30))  # anatomy in slices 0-5, background after
    stack += 0.002 * rng.random(stack.shape).astype(np.float32)  # faint background noise does not count
    network = perturbed(SliceSynthNet(**SMALL), seed=4)
    seen: list[tuple[int, ...]] = []
    handle = network.encoder.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    try:
        cropped = synthesise_slices(network, stack, 3.0, 1.0, keep_input=False)
    finally:
        handle.remove()
    whole = synthesise_slices(network, stack, 3.0, 1.0, keep_input=False,
                              acceleration=Acceleration(crop_to_anatomy=False))
    assert all(shape[-2] * shape[-1] < 0.7 * 150 * 140 for shape in seen)  # the network ran on crops only
    assert sum(shape[0] for shape in seen) == 9  # gap 6 (slices 5-8) still sees anatomy; slice 9 is in background-only gaps alone
    boxes = anatomy_boxes(anatomy_mask(stack))
    assert boxes[0] == (58, 87, 48, 82) and boxes[7] is None  # the anatomy and the 5 x 5 average's 2 pixels
    positions = np.arange(len(whole)) / 3.0
    for j, p in enumerate(positions):
        gap = min(int(math.floor(p + 1e-9)), 8)
        window = [min(max(i, 0), 9) for i in range(gap - 1, gap + 3)]
        anatomy = ndimage.binary_dilation(stack[window].max(0) > 0.1, iterations=8)
        if anatomy.any():
            np.testing.assert_allclose(cropped[j][anatomy], whole[j][anatomy], atol=1e-5, err_msg=f"slice {j}")
        else:  # no anatomy in the context: classic interpolation, no network call
            np.testing.assert_allclose(cropped[j], cubic_stack(stack, 3.0)[j], atol=1e-5)
    assert not np.allclose(whole, cubic_stack(stack, 3.0), atol=1e-4)
