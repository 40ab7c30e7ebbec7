"""Every key plans.json carries does what it says: set through `--set`, each changes what isrnet does.

A new plans key without a probe here fails `test_every_key_has_a_probe`, so no key can be a silent lie.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, write_volumes
from training_support import SMALL_NETWORK, smooth_volume

DATASET = "Dataset001_Keys"
TINY = {"training.patch_size": 24, "training.batch_size": 2}
RECORDS = {"plans_format", "dataset", "kind", "overrides", "device", "cases.*.slice_profile.thickness_source",
           "cases.*.slice_profile.family_source", "cases.*.slice_profile.confidence", "cases.*.reason",
           "cases.*.frames"}  # a time series' frame count, from the fingerprint (--set refuses it)


@pytest.fixture
def keys_dataset(folders):
    """Two tiny stacks (4 mm slices, 1 mm in-plane) with their fingerprint."""
    from isrnet.experiment_planning import extract_fingerprint
    folder = folders.raw / DATASET
    for case, seed in (("a", 0), ("b", 1)):
        write_volumes([Volume(smooth_volume((10, 80, 80), seed=seed), (4.0, 1.0, 1.0))],
                      folder / "imagesTr" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({"name": "Keys", "file_ending": ".nii.gz"}))
    extract_fingerprint(DATASET, workers=1)
    return folders


def _plans(overrides: dict[str, Any] | None = None, preprocess: bool = False):
    from isrnet.experiment_planning import PlanOptions, plan_experiment, preprocess as run_preprocessing
    plans = plan_experiment(DATASET, PlanOptions(overrides={**TINY, **(overrides or {})}))
    if preprocess:
        run_preprocessing(DATASET, workers=1)
    return plans


def _config(plans: dict):
    from isrnet.training.config import TrainingConfig
    return TrainingConfig.from_plans(plans, "ssft", {})


def _trainer(plans: dict, tmp: Path):
    from isrnet.training.initialisation import Initialisation
    from isrnet.training.trainer import Trainer
    return Trainer(_config(plans), None, None, tmp, plans, Initialisation(None, "test"))


def _batch(plans: dict, split: str = "train", seed: int | None = None, noise_sigma: float | None = None):
    """A first training (or validation) batch as the trainer would draw it; `noise_sigma` replaces the cases'
    measured noise level (the tiny stacks have no noisy background)."""
    from isrnet.preprocessing.preprocessor import load_training_cases
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers import build_sampler
    config = _config(plans)
    cases = load_training_cases(DATASET, plans)
    if noise_sigma is not None:
        cases = [(array, {**properties, "noise_sigma": noise_sigma}) for array, properties in cases]
    sampler = build_sampler(plans.sampler, cases, 4, split)
    return sampler.sample(batch_rng(config.seed if seed is None else seed, 0), config.batch_size, config.patch_size)


def _preprocessed(plans: dict) -> dict[str, np.ndarray]:
    from isrnet import paths
    from isrnet.preprocessing.preprocessor import preprocessed_cases
    folder = paths.preprocessed_folder() / DATASET / "data"
    return {case: np.load(folder / f"{case}.npy") for case in preprocessed_cases(DATASET)}


def _raises(function: Callable[[], Any]) -> str:
    try:
        function()
    except IsrnetError as error:
        return f"error: {error}"
    return "ok"


def _initialisation(stage: str) -> Callable[[dict, Path], str]:
    """Where `stage` starts from; a finished run of the previous stage exists for dataset 990 only."""
    def probe(plans: dict, tmp: Path) -> str:
        from isrnet import paths
        from isrnet.networks import build_network
        from isrnet.training.checkpointing import save_checkpoint
        from isrnet.training.initialisation import resolve_initialisation
        from isrnet.stages import STAGES
        run = paths.results_folder() / "Dataset990_Previous" / STAGES[stage].previous
        run.mkdir(parents=True, exist_ok=True)
        save_checkpoint({"network": plans.network, "state_dict": build_network(plans.network).state_dict()},
                        run / "checkpoint_final.pth")
        return resolve_initialisation(stage, plans.network, plans.stage_datasets, None, False).description
    return probe


def _sizes(plans: dict, device: str) -> dict[str, int]:
    """Patch and batch size a run on `device` trains with (the plans were made for the CPU)."""
    from isrnet.training.run import sizes_for_device
    elsewhere = plans.copy()
    elsewhere.device, elsewhere.overrides = "cpu" if device == "cuda" else "cuda", {}  # TINY's sizes set aside
    return sizes_for_device(elsewhere, device)


def _training_case_names(plans: dict) -> list[str]:
    from isrnet.preprocessing.preprocessor import load_training_cases
    return [properties["case"] for _, properties in load_training_cases(DATASET, plans)]


def _prediction_slices(plans: dict, tmp: Path) -> int:
    from isrnet.inference.predictor import Predictor
    from isrnet.networks import build_network
    predictor = Predictor(build_network(plans.network), "untrained", plans=plans)
    volume = Volume(smooth_volume((10, 40, 40)), (4.0, 1.0, 1.0))
    return predictor.predict(volume, case="a").shape[0]


def _hr_batch(sampler_overrides: dict[str, Any]) -> Any:
    from isrnet.stages import STAGES
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers import build_sampler
    options = {**STAGES["mrft"].sampler_defaults, **sampler_overrides}
    volume = smooth_volume((40, 40, 40)) / 1000.0
    return build_sampler(options, [(volume, {"case": "hr"})], 4, "train").sample(batch_rng(0, 0), 2, 24)


def _video_batch(sampler_overrides: dict[str, Any]) -> Any:
    from isrnet.stages import STAGES
    from isrnet.training.data_loading import batch_rng
    from isrnet.training.samplers import build_sampler
    options = {**STAGES["video"].sampler_defaults, **sampler_overrides}
    clip = (smooth_volume((40, 32, 32)) / 1000.0 * 255).astype(np.uint8)
    return build_sampler(options, [(clip, {"case": "clip"})], 4, "train").sample(batch_rng(0, 0), 2, 24)


def _lr_at_start(plans: dict, tmp: Path) -> float:
    from isrnet.training.trainer import scheduled_lr
    config = _config(plans)
    return scheduled_lr(config.lr, 0, 100, config.warmup_fraction)


# key -> (value to set, probe(plans, tmp) -> something that must change). Probes that need the preprocessed
# arrays of the changed plan are marked with preprocess=True.
PROBES: dict[str, tuple[Any, Callable[[dict, Path], Any], bool]] = {
    "normalisation": ("foreground_percentile_0.5_99.5", lambda p, t: _preprocessed(p)["a"].mean(), True),
    "network.name": ("NoSuchNet", lambda p, t: _raises(lambda: _trainer(p, t)), False),
    **{f"network.kwargs.{key}": (value + (2 if key != "context" else 2), lambda p, t: sum(
        x.numel() for x in _trainer(p, t).network.parameters()), False)
       for key, value in {"context": 4, **SMALL_NETWORK}.items()},
    "stage_datasets.mrft": (990, _initialisation("ssft"), False),
    "stage_datasets.video": (990, _initialisation("mrft"), False),
    "training.patch_size": (32, lambda p, t: _batch(p).context.shape, False),
    "training.batch_size": (3, lambda p, t: _batch(p).context.shape, False),
    **{f"training.sizes_by_device.{device}.{key}": (16, lambda p, t, d=device: _sizes(p, d), False)
       for device in ("cpu", "cuda") for key in ("patch_size", "batch_size")},
    "training.budget_minutes": (1.5, lambda p, t: _config(p).budget_minutes, False),
    "training.lr": (3e-4, lambda p, t: _trainer(p, t).optimizer.param_groups[0]["lr"], False),
    "training.warmup_fraction": (0.5, lambda p, t: _lr_at_start(p, t), False),
    "training.weight_decay": (1e-4, lambda p, t: _trainer(p, t).optimizer.param_groups[0]["weight_decay"], False),
    "training.loss": ("l2", lambda p, t: _trainer(p, t).loss.__name__, False),
    "training.guard": ("validation", lambda p, t: _trainer(p, t).config.guard, False),
    "training.witness_margin": (0.5, lambda p, t: _trainer(p, t).config.witness_margin, False),
    "training.halfway_weights": (False, lambda p, t: _trainer(p, t).config.halfway_weights, False),
    "training.validation_every": (7, lambda p, t: _config(p).validation_every, False),
    "training.validation_batches": (2, lambda p, t: _config(p).validation_batches, False),
    "training.checkpoint_every_seconds": (5.0, lambda p, t: _config(p).checkpoint_every_seconds, False),
    "training.seed": (7, lambda p, t: float(_batch(p).context.sum()), False),
    "sampler.name": ("mrft", lambda p, t: _raises(lambda: _batch(p)), False),
    "sampler.pairs": ("slices", lambda p, t: _batch(p).conditioning.round(4).tolist(), False),
    "sampler.targets_per_sample": (2, lambda p, t: _batch(p).targets.shape, False),
    "sampler.noise_matching": (False, lambda p, t: float(_batch(p, noise_sigma=0.05).context.sum()), False),
    "sampler.wide_gap_share": (1.0, lambda p, t: _batch(p).conditioning.round(4).tolist(), False),
    "sampler.thickness_jitter": (0.5, lambda p, t: float(_batch(p).context.sum()), False),
    "sampler.inplane_axis": ("matched", lambda p, t: float(_batch(p).context.sum()), False),
    "sampler.validation_fraction": (0.6, lambda p, t: float(_batch(p, "val").targets.sum()), False),
    "cases.*.slice_axis": (1, lambda p, t: _preprocessed(p)["a"].shape, True),
    "cases.*.factor": (2.0, _prediction_slices, False),
    "cases.*.slice_profile.thickness_mm": (2.0, lambda p, t: float(_batch(p).context.sum()), False),
    "cases.*.slice_profile.family": ("rect", lambda p, t: float(_batch(p).context.sum()), False),
    "cases.*.skip": (True, lambda p, t: _training_case_names(p), False),
}
# Sampler options of the other stages (their datasets are video clips and isotropic volumes)
OTHER_SAMPLERS = {
    "sampler.factor_range": ("mrft", [3.0, 3.0], lambda o: _hr_batch(o).conditioning[:, 0].tolist()),
    "sampler.thickness_ratio_range": ("mrft", [1.0, 1.0], lambda o: _hr_batch(o).conditioning[:, 1].tolist()),
    "sampler.profiles": ("mrft", ["rect"], lambda o: float(_hr_batch({"thickness_ratio_range": [1, 1], **o}).context.sum())),
    "sampler.intensity_augmentation": ("mrft", False, lambda o: float(_hr_batch(o).context.sum())),
    "sampler.contrast_randomisation": ("mrft", 0.5, lambda o: float(_hr_batch(o).context.sum())),
    "sampler.acquisition_physics": ("mrft", 1.0, lambda o: float(_hr_batch(o).context.sum())),
    "sampler.tissue_contrast": ("mrft", 1.0, lambda o: float(_hr_batch(o).context.sum())),
    "sampler.curve_after_acquisition": ("mrft", 1.0, lambda o: float(_hr_batch(o).context.sum())),
    "sampler.targets_per_sample@mrft": ("mrft", 2, lambda o: _hr_batch(o).targets.shape),
    "sampler.frame_step_range": ("video", [3, 3], lambda o: _video_batch(o).conditioning[:, 0].tolist()),
    "sampler.uneven_steps": ("video", False, lambda o: float(_video_batch(o).context.sum())),
    "sampler.targets_per_sample@video": ("video", 2, lambda o: _video_batch(o).targets.shape),
}


def _leaf_keys(content: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in content.items():
        name = "cases.*" if prefix == "cases." else f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "overrides":
            keys |= _leaf_keys(value, f"{name}.")
        else:
            keys.add(name)
    return keys


def test_every_key_has_a_probe(keys_dataset) -> None:
    from isrnet.stages import STAGES
    keys = _leaf_keys(_plans().as_json())
    assert keys - RECORDS == set(PROBES), "a plans key without a probe (or a probe for a key that is gone)"
    for stage in ("mrft", "video"):  # the other stages' sampler options
        stage_keys = {f"sampler.{key}" for key in STAGES[stage].sampler_defaults} - {"sampler.name"}
        probed = {key.split("@")[0] for key, (owner, _, _) in OTHER_SAMPLERS.items() if owner == stage}
        assert stage_keys == probed, stage


@pytest.mark.parametrize("key", sorted(PROBES))
def test_setting_a_key_changes_behaviour(keys_dataset, tmp_path: Path, key: str) -> None:
    value, probe, preprocess = PROBES[key]
    concrete = key.replace("*", "a")
    before = probe(_plans(preprocess=True), tmp_path / "before")
    after = probe(_plans({concrete: value}, preprocess=preprocess), tmp_path / "after")
    assert before != after, f"--set {concrete}={value!r} changed nothing ({before!r})"


@pytest.mark.parametrize("key", sorted(OTHER_SAMPLERS))
def test_other_stages_sampler_keys_change_their_pairs(key: str) -> None:
    _, value, probe = OTHER_SAMPLERS[key]
    option = key.split("@")[0].removeprefix("sampler.")
    assert probe({}) != probe({option: value}), f"sampler.{option}={value!r} changed nothing"


def test_isr_train_set_changes_the_simulated_profile(keys_dataset) -> None:
    """`isr_train --set cases.NAME.slice_profile.family=rect` reaches the sampler without preprocessing again."""
    from isrnet.experiment_planning.plans_file import set_plans_value
    plans = _plans(preprocess=True)
    before = _batch(plans).context
    assert set_plans_value(plans, "cases.*.slice_profile.family", "rect") == ["cases.a.slice_profile.family",
                                                                              "cases.b.slice_profile.family"]
    assert plans.cases["a"].slice_profile.family_source == "--set"
    assert not np.allclose(before, _batch(plans).context)


@pytest.mark.parametrize("key, value, message", [
    ("training.loss", "l3", "training.loss 'l3' is unknown"),
    ("training.guard", "oracle", "training.guard 'oracle' is unknown"),
    ("cases.*.slice_profile.family", "triangle", "family 'triangle' is unknown"),
    ("cases.*.slice_thickness", 2.0, "now cases.*.slice_profile.thickness_mm"),
    ("normalisation", "zscore", "normalisation 'zscore' is unknown"),
    ("cases.a.transpose_forward", [0, 1, 2], "settable keys are"),
    ("cases.zzz.factor", 2.0, "no case 'zzz'"),
    ("kind", "hr_mr", "is a record, not a setting"),
    ("device", "cuda", "is a record, not a setting"),
    ("training.stage", "ssft", "plans have no key 'training.stage'"),
])
def test_bad_settings_are_refused_at_planning(keys_dataset, key: str, value: Any, message: str) -> None:
    with pytest.raises(IsrnetError, match=message.replace("*", r"\*").replace("(", r"\(")):
        _plans({key: value})


def test_a_preprocessing_key_changed_at_training_time_says_to_preprocess_again(keys_dataset) -> None:
    from isrnet.preprocessing.preprocessor import load_training_cases
    plans = _plans(preprocess=True)
    plans.cases["a"].slice_axis = 1
    with pytest.raises(IsrnetError, match="preprocess again"):
        load_training_cases(DATASET, plans)


def test_the_plans_device_is_where_isr_train_runs_by_default(keys_dataset) -> None:
    """`device` is set by planning with -device (it sizes patches), not with --set; isr_train follows it."""
    import torch

    from isrnet.experiment_planning import PlanOptions, plan_experiment
    from isrnet.training import TrainingOptions, run_training
    plan_experiment(DATASET, PlanOptions(device="cuda", overrides=TINY))
    options = TrainingOptions(iterations=1, workers=0, from_scratch=True, validation_batches=1, tag="probe")
    if torch.cuda.is_available():
        assert run_training(DATASET, "ssft", options).record().config["device"] == "cuda"
    else:
        with pytest.raises(IsrnetError, match="no CUDA device"):
            run_training(DATASET, "ssft", options)
