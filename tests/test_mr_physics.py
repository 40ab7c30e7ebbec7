"""The MR acquisition model (acquisition/mr_physics.py) and mrft's pairs acquired with it."""
from __future__ import annotations

import numpy as np
import pytest

from isrnet.acquisition import profile_weights
from isrnet.acquisition.mr_physics import PhysicsRanges, complex_noise, interleave_step, rf_profile, truncate_kspace
from isrnet.training.samplers.acquisition_physics import acquire_slices
from isrnet.training.samplers.base import cut_pair
from isrnet.training.samplers.mrft import MrftSampler


def _step_block() -> np.ndarray:
    """[1, 64, 128]: 0 on the left half, 1 on the right (an edge across axis 2), smooth wrap-around avoided."""
    block = np.zeros((1, 64, 128), np.float32)
    block[..., 32:96] = 1.0
    return block


def test_kspace_truncation_rings_at_an_edge_and_a_taper_damps_it() -> None:
    hard = truncate_kspace(_step_block(), (1, 2), (0.5, 0.5), taper=0.0)[0, 32]
    tapered = truncate_kspace(_step_block(), (1, 2), (0.5, 0.5), taper=1.0)[0, 32]  # a Hann window
    assert hard.max() > 1.06  # Gibbs overshoot of a truncated Fourier series (about 9 %)
    assert hard[40:88].mean() == pytest.approx(1.0, abs=0.02) and hard[:24].max() > 0.01  # ringing outside too
    assert tapered.max() < 1.02
    full = truncate_kspace(_step_block(), (1, 2), (1.0, 1.0))
    np.testing.assert_allclose(full, _step_block(), atol=1e-5)  # the whole k-space: the block itself


def test_partial_fourier_blurs_along_the_phase_encode_axis_only() -> None:
    block = np.zeros((1, 64, 64), np.float32)
    block[0, 32, 32] = 1.0  # a point: its image is the point spread
    image = truncate_kspace(block, (1, 2), (1.0, 1.0), partial_fourier=0.625)[0]
    assert image[32, 32] < 0.9 and image[32, 31] == pytest.approx(0.0, abs=1e-4)  # spread along axis 1 only
    assert image[31, 32] > 0.05


def test_complex_noise_gives_the_rician_background_bias() -> None:
    rng = np.random.default_rng(0)
    background = complex_noise(np.zeros((400, 500)), 0.1, rng)
    assert background.mean() == pytest.approx(0.1 * np.sqrt(np.pi / 2), rel=0.02)  # Rayleigh mean
    bright = complex_noise(np.full((400, 500), 2.0), 0.1, rng)
    assert bright.mean() == pytest.approx(2.0, abs=0.01) and bright.std() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("time_bandwidth", [2.0, 4.0, 8.0])
def test_an_excitation_profile_has_its_nominal_thickness(time_bandwidth: float) -> None:
    distance = np.linspace(0.0, 6.0, 6001)
    profile = rf_profile(distance, 3.0, time_bandwidth)
    half = distance[np.flatnonzero(profile < 0.5)[0]]
    assert 2 * half == pytest.approx(3.0, rel=0.01)  # FWHM = nominal thickness
    assert profile[0] == pytest.approx(1.0, abs=0.01) and profile.min() > -0.02  # peak 1, small side lobes
    weights = profile_weights(61, np.array([30.0]), 3.0, "rf", time_bandwidth)[0]
    assert weights.sum() == pytest.approx(1.0) and weights[30] == weights.max()


def test_a_sharper_pulse_is_closer_to_a_box() -> None:
    edge = np.array([0.4])  # 0.4 FWHM from the centre: inside a box of the nominal thickness
    assert rf_profile(edge * 3.0, 3.0, 8.0)[0] > rf_profile(edge * 3.0, 3.0, 2.0)[0] > 0.6


def test_noise_on_the_acquired_thick_slice_is_not_reduced_by_the_profile() -> None:
    """Complex noise added to the simulated thick slices keeps its level at any thickness; noise in the fine block
    is averaged away by a thick profile (what mrft's pairs did before acquisition physics)."""
    ranges = PhysicsRanges(noise_sigma=(0.02, 0.02), interleave_chance=0.0)
    block = np.full((60, 64, 64), 0.5, np.float32)

    def level(images: np.ndarray) -> float:  # noise sigma from neighbouring-pixel differences
        return float(np.std(np.diff(images, axis=-1)) / np.sqrt(2))
    for thickness in (1.0, 8.0):
        context, _, truth = cut_pair(block, 8.0, thickness, "gaussian", 4, 2, np.random.default_rng(1))
        acquired = acquire_slices(context, np.random.default_rng(2), ranges)
        assert level(acquired) == pytest.approx(0.02, rel=0.1), thickness
        assert level(truth) < 1e-6  # the targets stay noise-free
    noisy_block = block + np.random.default_rng(3).normal(0, 0.02, block.shape).astype(np.float32)
    context, _, _ = cut_pair(noisy_block, 8.0, 8.0, "gaussian", 4, 2, np.random.default_rng(1))
    assert level(context) < 0.5 * 0.02


def test_interleave_step_scales_every_other_slice() -> None:
    slices = np.ones((4, 2, 2), np.float32)
    stepped = interleave_step(slices, 0.03, first_half_even=False)
    assert stepped[:, 0, 0].tolist() == pytest.approx([1.0, 1.03, 1.0, 1.03])


def test_mrft_pairs_with_acquisition_physics_differ_and_without_it_are_as_before() -> None:
    volume = np.random.default_rng(0).uniform(0.2, 1.0, (48, 48, 48)).astype(np.float32)

    def batch(**options):
        sampler = MrftSampler([(volume, {"case": "hr"})], **options)
        return sampler.sample(np.random.default_rng(5), 3, 24)
    plain, again, physics = batch(), batch(acquisition_physics=0.0), batch(acquisition_physics=1.0)
    np.testing.assert_array_equal(plain.context, again.context)  # chance 0 draws nothing: the batches of before
    assert not np.allclose(plain.context, physics.context)
    assert np.isfinite(physics.context).all() and physics.context.min() >= 0.0  # magnitude images


def _tissue_phantom() -> np.ndarray:
    """Background, then three nested 'tissues' (0.3, 0.6, 0.9) with a little texture."""
    grid = np.indices((40, 40, 40)).astype(np.float32) - 19.5
    radius = np.sqrt((grid ** 2).sum(axis=0))
    volume = np.select([radius < 8, radius < 13, radius < 18], [0.9, 0.6, 0.3], 0.0).astype(np.float32)
    texture = np.random.default_rng(0).normal(0, 0.02, volume.shape).astype(np.float32)
    return np.where(volume > 0, volume + texture, 0.0).astype(np.float32)


def test_the_tissue_synthesiser_gives_different_contrasts_from_one_map_set() -> None:
    from isrnet.training.samplers.tissue_contrast import synthesise_contrast, tissue_centres
    volume = _tissue_phantom()
    centres = tissue_centres(volume)
    assert centres[1:] == pytest.approx([0.3, 0.6, 0.9], abs=0.03)
    inner, middle, outer = (volume > 0.8), (volume > 0.5) & (volume < 0.7), (volume > 0.2) & (volume < 0.4)
    orders = set()
    for seed in range(12):
        image = synthesise_contrast(volume, centres, np.random.default_rng(seed))
        means = [float(image[region].mean()) for region in (outer, middle, inner)]
        orders.add(tuple(np.argsort(means)))
        inside = image[inner]
        assert inside.std() > 0.0  # the real texture is kept within a tissue
    assert len(orders) >= 3  # the tissues come out in different orders (T1-, T2-, FLAIR-like and others)


def test_mrft_pairs_with_tissue_contrast_differ_and_without_it_are_as_before() -> None:
    volume = _tissue_phantom()

    def batch(**options):
        return MrftSampler([(volume, {"case": "hr"})], **options).sample(np.random.default_rng(5), 3, 24)
    plain, again, tissue = batch(), batch(tissue_contrast=0.0), batch(tissue_contrast=1.0)
    np.testing.assert_array_equal(plain.context, again.context)
    assert not np.allclose(plain.context, tissue.context) and np.isfinite(tissue.context).all()


def test_a_curve_after_acquisition_remaps_context_and_targets_alike() -> None:
    from isrnet.training.samplers.contrast import same_curve
    rng = np.random.default_rng(3)
    context = rng.uniform(0.0, 1.0, (4, 8, 8)).astype(np.float32)
    targets = context[:2, ::-1].copy()  # the same intensities, elsewhere
    mapped_context, mapped_targets = same_curve((context, targets), np.random.default_rng(1))
    np.testing.assert_array_equal(mapped_targets, mapped_context[:2, ::-1])
    assert not np.allclose(mapped_context, context) and 0.0 <= mapped_context.min() <= mapped_context.max() <= 1.0


def test_a_patch_border_does_not_ring_as_if_the_image_wrapped_around() -> None:
    ramp = np.broadcast_to(np.linspace(0.0, 1.0, 96, dtype=np.float32), (1, 64, 96)).copy()
    truncated = truncate_kspace(ramp, (1, 2), (0.5, 0.5))
    assert np.abs(truncated - ramp).max() < 0.05  # a plain FFT would ring at the ramp's wrapped-around jump
