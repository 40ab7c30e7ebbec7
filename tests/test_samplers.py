"""Each stage's sampler: targets really lie at their positions, clips never mix, bad input is clear."""
from __future__ import annotations

import numpy as np
import pytest

from isrnet.errors import IsrnetError
from isrnet.training.samplers.base import cut_pair
from isrnet.training.samplers.mrft import MrftSampler
from isrnet.training.samplers.ssft import SsftSampler
from isrnet.training.samplers.video import VideoSampler


def ramp_volume(shape=(40, 40, 40)) -> np.ndarray:
    """Value = index along axis 0 + 1000 * index along axis 1 + 10^6 * index along axis 2 (all distinct)."""
    z, y, x = np.indices(shape, dtype=np.float64)
    return (z + 100 * y + 10000 * x).astype(np.float32)


def check_linear_in_t(batch, tolerance: float) -> None:
    """On a linear ramp along the slice direction, the target at t equals (1-t) * left + t * right."""
    left, right = batch.context[:, 1], batch.context[:, 2]
    for m in range(batch.positions.shape[1]):
        t = batch.positions[:, m][:, None, None]
        expected = (1 - t) * left + t * right
        assert np.allclose(batch.targets[:, m], expected, atol=tolerance)


def test_video_targets_lie_at_t_and_clips_never_mix() -> None:
    # frames whose value is the frame index + 1000 * clip number: a mixed sample would show two thousands.
    clips = [(np.full((30 + 5 * c, 40, 40), 0, np.uint8) + np.arange(30 + 5 * c, dtype=np.uint8)[:, None, None],
              {"case": f"clip{c}"}) for c in range(3)]
    sampler = VideoSampler(clips, frame_step_range=(2, 8), uneven_steps=True)
    batch = sampler.sample(np.random.default_rng(0), 16, 24)
    for b in range(16):
        frames = np.round(batch.context[b, :, 0, 0] * 255)
        assert np.all(np.diff(frames) != 0)  # kept frames are distinct and monotonic
        assert np.all(np.diff(frames) > 0) or np.all(np.diff(frames) < 0)
    check_linear_in_t(batch, 1e-4)  # frame value is linear in time, so the target at t lies at t


def test_video_skips_short_clips_and_errors_when_none_usable() -> None:
    long = (np.zeros((40, 16, 16), np.uint8), {"case": "long"})
    short = (np.zeros((5, 16, 16), np.uint8), {"case": "short"})
    sampler = VideoSampler([long, short], frame_step_range=(2, 4))
    assert [c[1]["case"] for c in sampler.clips] == ["long"]
    with pytest.raises(IsrnetError, match="no clip"):
        VideoSampler([short], frame_step_range=(2, 4))


@pytest.mark.parametrize("ratios, tolerance", [((0.0, 0.0), 1e-3), ((0.3, 1.5), 0.15)])
def test_mrft_targets_lie_at_t_on_every_axis(ratios: tuple[float, float], tolerance: float) -> None:
    """Decimation is exact; a thick profile around a fractional centre of a voxelised ramp moves the
    centre of mass by a fraction of a voxel (as a real acquisition would), hence the looser tolerance."""
    z, y, x = np.indices((40, 40, 40), dtype=np.float32)
    sampler = MrftSampler([(z + 2 * y + 3 * x, {"case": "ramp"})], factor_range=(2.0, 6.0),
                          thickness_ratio_range=ratios, intensity_augmentation=False)
    batch = sampler.sample(np.random.default_rng(1), 12, 16)
    check_linear_in_t(batch, tolerance)
    assert batch.conditioning.shape == (12, 2) and np.all(batch.conditioning[:, 0] >= 1 / 3 - 1e-6)


@pytest.mark.parametrize("pairs", ["inplane", "slices", "both"])
def test_ssft_targets_lie_at_t(pairs: str) -> None:
    z, y, x = np.indices((12, 48, 48), dtype=np.float32)
    volume = z + 2 * y + 3 * x  # linear along every axis: exact for cubic resampling too
    sampler = SsftSampler([(volume, {"case": "r", "spacing": [4.0, 1.0, 1.0], "slice_thickness": 4.0})], pairs)
    batch = sampler.sample(np.random.default_rng(2), 8, 24)
    assert batch.context.shape == (8, 4, 24, 24) and batch.targets.shape == (8, 3, 24, 24)
    check_linear_in_t(batch, 1e-2)
    assert np.all(batch.context != 0)  # no slice sampled outside the block
    assert np.all((batch.positions > 0) & (batch.positions < 1))


def test_ssft_validation_pairs_come_from_a_held_out_band() -> None:
    volume = ramp_volume((12, 60, 60)) + 1.0  # pixel value encodes its row: round(v / 100) % 100
    properties = {"case": "r", "spacing": [4.0, 1.0, 1.0]}
    band = range(24, 36)  # the central 20 % of 60 rows
    for split in ("val", "train"):
        sampler = SsftSampler([(volume, properties)], "slices", split=split, validation_fraction=0.2)
        batch = sampler.sample(np.random.default_rng(3), 6, 8)
        rows = set(np.unique(np.round(batch.context / 100) % 100).astype(int))
        assert rows <= set(band) if split == "val" else not rows & set(band)


def test_ssft_tops_simulated_slices_up_to_the_acquisition_noise_and_leaves_targets_clean() -> None:
    from isrnet.acquisition.noise import kept_noise_variance
    volume = np.ones((12, 48, 48), np.float32)  # flat: every simulated slice and target is exactly 1 without noise
    sigma = 0.05
    noisy = SsftSampler([(volume, {"case": "f", "spacing": [4.0, 1.0, 1.0], "slice_thickness": 4.0,
                                   "noise_sigma": sigma})], "inplane")
    batch = noisy.sample(np.random.default_rng(4), 8, 24)
    np.testing.assert_allclose(batch.targets, 1.0, atol=1e-5)  # the targets are real in-plane lines: untouched
    added = float(np.std(batch.context))
    assert kept_noise_variance(4.0, "gaussian") == pytest.approx(0.166, abs=0.01)  # a 4-voxel Gaussian averages
    assert added == pytest.approx(sigma * np.sqrt(1 - kept_noise_variance(4.0, "gaussian")), rel=0.05)
    off = SsftSampler([(volume, {"case": "f", "spacing": [4.0, 1.0, 1.0], "slice_thickness": 4.0,
                                 "noise_sigma": sigma})], "inplane", noise_matching=False)
    np.testing.assert_allclose(off.sample(np.random.default_rng(4), 8, 24).context, 1.0, atol=1e-5)
    # a clean acquisition (sigma 0, or no record of it) draws exactly the pairs it drew before noise matching
    clean = [SsftSampler([(volume + np.indices(volume.shape)[1], {"case": "f", "spacing": [4.0, 1.0, 1.0], **extra})],
                         "inplane", noise_matching=matching).sample(np.random.default_rng(5), 4, 24)
             for extra, matching in (({"noise_sigma": 0.0}, True), ({}, True), ({}, False))]
    for other in clean[1:]:
        np.testing.assert_array_equal(clean[0].context, other.context)


def test_contrast_randomisation_off_draws_what_mrft_always_drew_and_on_reorders_tissues() -> None:
    from isrnet.training.samplers.contrast import gamma_jitter, intensity_curve, random_contrast
    block = np.random.default_rng(0).uniform(0, 1, (12, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(random_contrast(block, np.random.default_rng(5), 0.0),
                                  gamma_jitter(block, np.random.default_rng(5)))
    curves = [intensity_curve(np.random.default_rng(seed)) for seed in range(200)]
    monotone = [bool(np.all(np.diff(y) >= 0)) for _, y in curves]
    assert any(monotone) and not all(monotone)  # T1-like orders and reversed or mixed ones
    assert all(x[0] == 0 and x[-1] == 1 and np.all(np.diff(x) > 0) and y.max() == 1 for x, y in curves)
    for seed in range(20):
        mapped = random_contrast(block, np.random.default_rng(seed), 1.0)
        assert mapped.shape == block.shape and mapped.dtype == np.float32
        assert np.isfinite(mapped).all() and mapped.min() >= 0 and mapped.max() < 2.0


def test_mrft_with_contrast_randomisation_keeps_context_and_targets_in_one_contrast() -> None:
    """The HR block is remapped before the thick slices are made: targets and context share the contrast."""
    volume = np.random.default_rng(1).uniform(0, 1, (40, 40, 40)).astype(np.float32)
    volume = np.cumsum(np.cumsum(volume, axis=1), axis=2)
    volume /= volume.max()  # smooth ramps: neighbouring slices nearly equal
    sampler = MrftSampler([(volume, {"case": "ramp"})], context=4, factor_range=(2.0, 2.0),
                          thickness_ratio_range=(0.0, 0.0), contrast_randomisation=1.0)
    batch = sampler.sample(np.random.default_rng(3), 6, 24)
    context_mean = batch.context.mean(axis=(1, 2, 3))
    target_mean = batch.targets.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(target_mean, context_mean, rtol=0.2, atol=0.02)


def test_ssft_wide_gap_pairs_train_at_twice_the_spacing_and_never_validate() -> None:
    """sampler.wide_gap_share: that share of the training in-plane pairs is simulated at twice the slice spacing
    (the hidden-slice witness's gap), with the same thickness; validation pairs keep the case's own gap."""
    from isrnet.networks.slice_synth import conditioning_vector
    z, y, x = np.indices((12, 64, 64), dtype=np.float32)
    volume = z + 2 * y + 3 * x
    properties = {"case": "r", "spacing": [4.0, 1.0, 1.0], "slice_thickness": 4.0}
    own, wide = conditioning_vector(4.0, 1.0), conditioning_vector(8.0, 0.5)
    for share, split, expected in ((1.0, "train", wide), (1.0, "val", own), (0.0, "train", own)):
        sampler = SsftSampler([(volume, properties)], "inplane", split=split, wide_gap_share=share)
        batch = sampler.sample(np.random.default_rng(5), 6, 24)
        np.testing.assert_allclose(batch.conditioning, np.tile(expected, (6, 1)), rtol=1e-6)
        check_linear_in_t(batch, 1e-2)
    mixed = SsftSampler([(volume, properties)], "inplane", wide_gap_share=0.5).sample(np.random.default_rng(6), 16, 24)
    assert 0 < int(np.isclose(mixed.conditioning, wide).all(axis=1).sum()) < 16
    with pytest.raises(IsrnetError, match="wide_gap_share"):
        SsftSampler([(volume, properties)], "inplane", wide_gap_share=1.5)


def test_ssft_thickness_jitter_varies_the_simulated_thickness_not_the_told_one(monkeypatch) -> None:
    """sampler.thickness_jitter: training pairs are simulated with thicknesses drawn within [1 / (1 + j), 1 + j]
    times the plan's, the network is told the plan's; validation pairs are simulated with it exactly."""
    import isrnet.training.samplers.ssft as ssft_module
    from isrnet.networks.slice_synth import conditioning_vector
    simulated = []

    def recording_cut_pair(block, step, thickness_voxels, *args, **kwargs):
        simulated.append(thickness_voxels)
        return cut_pair(block, step, thickness_voxels, *args, **kwargs)

    monkeypatch.setattr(ssft_module, "cut_pair", recording_cut_pair)
    z, y, x = np.indices((12, 64, 64), dtype=np.float32)
    properties = {"case": "j", "spacing": [4.0, 1.0, 1.0]}  # no profile decided: 4 mm Gaussian, the spacing
    for jitter, split in ((0.5, "train"), (0.5, "val"), (0.0, "train")):
        simulated.clear()
        sampler = SsftSampler([(z + 2 * y + 3 * x, properties)], "inplane", split=split, wide_gap_share=0.0,
                              thickness_jitter=jitter)
        batch = sampler.sample(np.random.default_rng(5), 16, 24)
        np.testing.assert_allclose(batch.conditioning, np.tile(conditioning_vector(4.0, 1.0), (16, 1)), rtol=1e-6)
        widths = np.array(simulated)
        if jitter and split == "train":
            assert widths.min() >= 4.0 / 1.5 - 1e-6 and widths.max() <= 4.0 * 1.5 + 1e-6
            assert widths.min() < 3.7 and widths.max() > 4.3
        else:
            np.testing.assert_allclose(widths, 4.0)
    with pytest.raises(IsrnetError, match="thickness_jitter"):
        SsftSampler([(z, properties)], "inplane", thickness_jitter=-0.1)


def test_ssft_matched_inplane_axis_draws_the_axis_that_looks_like_the_slice_axis(monkeypatch) -> None:
    """sampler.inplane_axis 'matched': most in-plane pairs come from the in-plane axis whose spectrum, blurred with
    the plan's profile, matches the slice axis; here axis 1 is blurred beyond it, so axis 2 should be drawn."""
    from scipy import ndimage

    import isrnet.training.samplers.ssft as ssft_module
    from isrnet.acquisition import simulate_thick_slices
    steps = []

    def recording_cut_pair(block, step, *args, **kwargs):
        steps.append(round(step, 3))
        return cut_pair(block, step, *args, **kwargs)

    monkeypatch.setattr(ssft_module, "cut_pair", recording_cut_pair)
    rng = np.random.default_rng(0)
    fine = ndimage.gaussian_filter(rng.standard_normal((72, 64, 64)), 1.0)
    fine = (1.0 + 0.3 * fine / fine.std()).astype(np.float32)
    thick = simulate_thick_slices(fine, 0, 3.0, 3.0, "gaussian")[0]  # Gaussian 3 mm every 3 mm
    unlike_axis_1 = ndimage.gaussian_filter1d(thick, 1.5, axis=1)
    properties = {"case": "m", "spacing": [3.0, 1.0, 1.01]}  # the step tells the axes apart: 3.0 vs 2.97 pixels
    along_axis_2 = round(3.0 / 1.01, 3)
    for choice in ("matched", "either"):
        steps.clear()
        sampler = SsftSampler([(unlike_axis_1, properties)], "inplane", wide_gap_share=0.0, inplane_axis=choice)
        sampler.sample(np.random.default_rng(1), 40, 24)
        share = steps.count(along_axis_2) / len(steps)
        if choice == "matched":
            assert sampler.axis_chances[0][1] > 0.9
            assert share > 0.8
        else:
            assert sampler.axis_chances == [None]
            assert 0.25 < share < 0.75
    with pytest.raises(IsrnetError, match="inplane_axis"):
        SsftSampler([(thick, properties)], "inplane", inplane_axis="best")
