"""Patient-level adaptation: fine-tune a copy of the model on one case alone, then predict that case with it.

    adapted, record = adapt_to_case(predictor, "P01", volume, settings, profile, AdaptationOptions(minutes=2))
    out = adapted.predict(volume, settings)

What runs is ssft on a one-case dataset that exists only in memory: the case is planned as
`isr_plan_and_preprocess` would plan it (patch and batch size for the device, the ssft stage's fine-tuning rate
and warm-up), the training pairs come from the case itself with its slice profile, and the never-worse guard of
the trainer keeps the starting weights when the held-out pairs of this case say fine-tuning made them worse.
The run's files live in a temporary folder; `save_to` keeps the chosen weights as `<case>.pth` with a
provenance `<case>.json` (and the model's plans as `plans.json`, so `-m FOLDER/<case>.pth` predicts with the same
per-case settings). isr_predict's `--save-adapted` uses OUT/adapted_weights/.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from isrnet import __version__
from isrnet.degradation.slice_profile import SliceProfile, decide_slice_profile
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import volume_entry
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.experiment_planning.plans_file import set_dotted
from isrnet.imageio.volume import Volume
from isrnet.imageio.geometry import slices_first
from isrnet.inference.predictor import FAMILY_NOT_DECIDED, PredictionSettings, Predictor
from isrnet.networks import build_network
from isrnet.preprocessing.preprocessor import crop_box, normalised_noise_sigma, prepare_volume
from isrnet.training.checkpointing import load_checkpoint, save_checkpoint
from isrnet.training.config import TrainingConfig
from isrnet.training.initialization import Initialisation
from isrnet.training.samplers import build_samplers
from isrnet.training.trainer import Trainer
from isrnet.utilities.files import save_json
from isrnet.utilities.provenance import command_line

ADAPTED_FOLDER = "adapted_weights"  # under the prediction's output folder, with --save-adapted


@dataclass(frozen=True)
class AdaptationOptions:
    """Per-case fine-tuning before prediction; off unless `minutes` or `iterations` is set."""
    minutes: float | None = None  # wall-clock budget per case (preparation and training)
    iterations: int | None = None  # fixed count instead (reproducible: same seed + same N = same weights)
    seed: int = 12345
    workers: int = 1  # background sampling processes per case (0: in the predicting process)
    save: bool = False  # keep each case's weights in OUT/adapted_weights/<case>.pth (+ <case>.json)
    plans_overrides: dict = field(default_factory=dict)  # dotted keys of the case's plans, e.g. training.batch_size

    def __post_init__(self) -> None:
        if self.minutes is not None and self.iterations is not None:
            raise IsrnetError("--adapt-minutes and --adapt-iterations exclude each other")
        if (self.minutes is not None and self.minutes <= 0) or (self.iterations is not None and self.iterations < 1):
            raise IsrnetError("--adapt-minutes must be > 0 and --adapt-iterations >= 1")
        if self.save and not self.enabled:
            raise IsrnetError("--save-adapted needs --adapt-minutes or --adapt-iterations")

    @property
    def enabled(self) -> bool:
        return self.minutes is not None or self.iterations is not None


def case_plans(predictor: Predictor, case: str, entry: dict, profile: SliceProfile, factor: float,
               overrides: dict | None = None) -> dict:
    """The plans of a one-case ssft dataset: the case (its fingerprint `entry`) planned as the planner plans any
    target case at the prediction's `factor`, with the model's network and normalisation (and its ssft sampler
    options when the model is a dataset's ssft run), then `overrides` (dotted keys, as isr_train --set)."""
    if predictor.network_config is None:
        raise IsrnetError("adaptation needs a predictor loaded from a checkpoint (Predictor.from_checkpoint / "
                          "from_model), which knows its network's configuration")
    plans = plan_dataset({"dataset": f"adapted_{case}", "kind": "target",
                          "cases": {case: {**entry, "slice_profile": profile.as_record()}}},
                         predictor.device, factor=factor)
    plans["network"] = copy.deepcopy(predictor.network_config)
    plans["normalization"] = predictor.normalization
    if predictor.plans.get("kind") == "target":
        plans["sampler"] = copy.deepcopy(predictor.plans["sampler"])
    for key, value in (overrides or {}).items():
        set_dotted(plans, key, value)
    return plans


def _training_case(volume: Volume, case: str, axis: int, entry: dict, plans: dict) -> tuple[np.ndarray, dict]:
    """(slices-first normalised array cropped to the foreground, the sampler's properties) of the case."""
    box = crop_box(entry["foreground_bbox"], entry["shape"], axis)
    array, inversion = prepare_volume(volume, axis, plans["normalization"], box)
    spacing = [volume.spacing[a] for a in inversion.transpose_forward]
    plan = plans["cases"][case]
    return array, {"case": case, "spacing": spacing, "slice_thickness": plan["slice_thickness"],
                   "slice_profile": plan["slice_profile"], "noise_sigma": normalised_noise_sigma(volume, inversion)}


def _family(predictor: Predictor, case: str, volume: Volume, axis: int, profile: SliceProfile) -> SliceProfile:
    """The profile with a family the training pairs can use: the model's plans' for a case they know, else, when
    only the thickness was given (prediction needs no family), the family estimated at that thickness."""
    planned = predictor.plans.get("cases", {}).get(case, {}).get("slice_profile")
    if predictor.plans.get("kind") == "target" and planned:
        return replace(profile, family=planned, family_source="plans")
    if profile.family_source != FAMILY_NOT_DECIDED:
        return profile
    stack = slices_first(volume, axis)
    decided = decide_slice_profile(stack.array, stack.spacing, dataset_thickness=profile.thickness_mm)
    return replace(profile, family=decided.family, family_source=decided.family_source)


def adapt_to_case(predictor: Predictor, case: str, volume: Volume, settings: PredictionSettings,
                  profile: SliceProfile, options: AdaptationOptions, source: Path | None = None,
                  save_to: Path | None = None) -> tuple[Predictor, dict]:
    """Fine-tune a copy of `predictor`'s network on `volume` alone; returns (predictor with the chosen weights,
    the record for the sidecar). The caller's predictor is left unchanged. With `save_to` (a folder), the chosen
    weights are kept there as `<case>.pth` with provenance."""
    started = time.time()
    axis = Predictor.slice_axis(volume, settings)
    profile = _family(predictor, case, volume, axis, profile)
    entry = volume_entry(volume, source or case, axis)
    plans = case_plans(predictor, case, entry, profile, predictor.resolve_factor(volume, settings, axis),
                       options.plans_overrides)
    overrides = {"device": predictor.device, "seed": options.seed, "workers": options.workers, "tag": case,
                 "iterations": options.iterations, "init": predictor.weights}
    if options.minutes is not None:
        overrides["budget_minutes"] = options.minutes
    config = TrainingConfig.from_plans(plans, "ssft", overrides)
    config.extra["trained_factors"] = list(predictor.trained_factors) if predictor.trained_factors else None
    samplers = build_samplers(plans["sampler"], [_training_case(volume, case, axis, entry, plans)],
                              plans["network"]["kwargs"]["context"])
    start_weights = {key: value.detach().cpu().clone() for key, value in predictor.network.state_dict().items()}
    with tempfile.TemporaryDirectory(prefix="isrnet_adapt_") as folder:
        trainer = Trainer(config, samplers[0], samplers[1], Path(folder), plans,
                          Initialisation(start_weights, predictor.description, predictor.weights), command_start=started,
                          command=command_line())
        trainer.run()
        final = load_checkpoint(Path(folder) / "checkpoint_final.pth")
        seconds = time.time() - started
        guard = trainer.guard or {}
        record = {"start_weights": predictor.description, "start_weights_file": predictor.weights,
                  "iterations": trainer.iteration, "seconds": round(seconds, 1),
                  "budget_minutes": options.minutes, "fixed_iterations": options.iterations, "seed": options.seed,
                  "kept": guard.get("kept"), "guard": guard, "slice_profile": profile.as_record(),
                  "threads": trainer.threads}
        if save_to is not None:
            record["saved_weights"] = str(_save_adapted(Path(folder) / "checkpoint_final.pth", save_to,
                                                        case, source, predictor, record))
    network = build_network(final["network"])
    network.load_state_dict(final["state_dict"])
    kept = "start kept by the guard" if guard.get("kept") == "start" else f"{trainer.iteration} iterations"
    adapted = predictor.with_network(network, f"{predictor.description}, adapted to {case} ({kept})")
    adapted.weights = record.get("saved_weights")
    return adapted, record


def _save_adapted(checkpoint: Path, folder: Path, case: str, source: Path | None, predictor: Predictor,
                  record: dict) -> Path:
    """`folder/<case>.pth` (atomically) with `<case>.json` provenance and the model's plans beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{case}.pth"
    content = load_checkpoint(checkpoint)
    content.pop("optimizer", None)  # weights to predict with, not a run to resume
    content["adapted_to"] = case
    save_checkpoint(content, target)
    if predictor.plans:
        save_json(predictor.plans, folder / "plans.json")
    provenance = {"case": case, "input": str(source) if source else None, "weights": target.name,
                  **{key: value for key, value in record.items() if key != "saved_weights"},
                  "command": command_line(), "isrnet_version": __version__, "torch_version": torch.__version__,
                  "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    save_json(provenance, folder / f"{case}.json")
    return target

