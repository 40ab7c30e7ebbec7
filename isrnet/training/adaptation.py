"""Patient-level adaptation: fine-tune a copy of some weights on one case alone (weights + network + case in,
weights + a record out).

    adapted = adapt_to_case(StartingPoint(weights, network), AdaptationCase("P01", volume, axis, factor, profile),
                            AdaptationOptions(minutes=2))
    adapted.weights, adapted.record

What runs is ssft on a one-case dataset that exists only in memory: the case is planned as
`isr_plan_and_preprocess` would plan it (patch and batch size for the device, the ssft stage's fine-tuning rate
and warm-up), the training pairs come from the case itself with its slice profile, and the never-worse guard of
the trainer keeps the starting weights when the held-out pairs of this case or its hidden real slices say
fine-tuning made them worse (training/guard.py). A case like the cases the start was fine-tuned on
(adaptation_need.py: noise, contrast, slice profile) is not fine-tuned at all with `when='unlike'`: the record
says why (the rule held on the development mix, not on an unseen source: documentation/prediction_and_evaluation.md).
The run's files live in a temporary folder; `save_to` keeps the chosen weights as `<case>.pth` with a
provenance `<case>.json` (and the starting plans as `plans.json`, so `-m FOLDER/<case>.pth` predicts with the same
per-case settings). Prediction calls this through `Predictor.adapted_to` (isr_predict --adapt-minutes).
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from isrnet import __version__, paths
from isrnet.acquisition.slice_profile import ProfileSource, SliceProfile, decide_slice_profile
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import volume_entry
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.plans import Plans
from isrnet.experiment_planning.plans_file import set_plans_value
from isrnet.imageio.geometry import slices_first
from isrnet.imageio.volume import Volume
from isrnet.intensity import DEFAULT_NORMALISATION
from isrnet.preprocessing.preprocessor import (DONE_FILE, crop_box, load_training_cases, normalised_noise_sigma,
                                               prepare_volume)
from isrnet.stages import DatasetKind
from isrnet.training.adaptation_need import Appearance, adaptation_need, appearance
from isrnet.training.checkpointing import load_checkpoint, save_checkpoint
from isrnet.training.config import TrainingConfig
from isrnet.training.initialisation import Initialisation
from isrnet.training.samplers import build_samplers
from isrnet.training.trainer import Trainer
from isrnet.utilities.files import save_json
from isrnet.utilities.provenance import command_line

ADAPTED_FOLDER = "adapted_weights"  # under the prediction's output folder, with --save-adapted
ADAPT_WHEN = ("always", "unlike")  # AdaptationOptions.when: which cases are fine-tuned (isr_predict --adapt-when)


@dataclass(frozen=True)
class AdaptationOptions:
    """Per-case fine-tuning before prediction; off unless `minutes` or `iterations` is set."""
    minutes: float | None = None  # wall-clock budget per case (preparation and training)
    iterations: int | None = None  # fixed count instead (reproducible: same seed + same N = same weights)
    seed: int = 12345
    workers: int = 1  # background sampling processes per case (0: in the predicting process)
    save: bool = False  # keep each case's weights in OUT/adapted_weights/<case>.pth (+ <case>.json)
    when: str = "always"  # or 'unlike': only cases unlike the start's dataset (adaptation_need.py)
    plans_overrides: dict = field(default_factory=dict)  # dotted keys of the case's plans, e.g. training.batch_size

    def __post_init__(self) -> None:
        if self.minutes is not None and self.iterations is not None:
            raise IsrnetError("--adapt-minutes and --adapt-iterations exclude each other")
        if (self.minutes is not None and self.minutes <= 0) or (self.iterations is not None and self.iterations < 1):
            raise IsrnetError("--adapt-minutes must be > 0 and --adapt-iterations >= 1")
        if self.save and not self.enabled:
            raise IsrnetError("--save-adapted needs --adapt-minutes or --adapt-iterations")
        if self.when not in ADAPT_WHEN:
            raise IsrnetError(f"--adapt-when '{self.when}' is unknown; use one of {', '.join(ADAPT_WHEN)}")

    @property
    def enabled(self) -> bool:
        return self.minutes is not None or self.iterations is not None


@dataclass(frozen=True)
class StartingPoint:
    """The weights adaptation starts from and what they were trained with."""
    weights: dict[str, torch.Tensor]  # a state dict of `network`
    network: dict  # networks.build_network's configuration
    description: str = "the given weights"
    weights_file: str | None = None  # where the weights came from (provenance)
    plans: Plans | None = None  # the plans they were trained with (a dataset's ssft run: its sampler and cases)
    normalisation: str = DEFAULT_NORMALISATION
    trained_factors: tuple[float, float] | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class AdaptationCase:
    """The one case: its volume as read, the axis and factor it is super-resolved along and by, its profile."""
    name: str
    volume: Volume
    slice_axis: int
    factor: float
    slice_profile: SliceProfile  # a family that is not decided (ProfileSource.NOT_DECIDED) is estimated here
    source: Path | None = None  # the input file (provenance)


@dataclass
class Adapted:
    """Adaptation's outcome: the chosen weights (fine-tuned, or the start when the guard kept it) and a record."""
    weights: dict[str, torch.Tensor]
    network: dict
    record: dict
    kept_start: bool
    iterations: int
    skipped: bool = False  # not fine-tuned at all: the case is like the start's dataset (record['need'])

    @property
    def summary(self) -> str:
        if self.skipped:
            return "not adapted: like the dataset's cases"
        if self.kept_start:
            return "start kept by the guard"
        halfway = self.record.get("kept") == "halfway"
        return f"{self.iterations} iterations{', halfway weights kept by the guard' if halfway else ''}"


def case_plans(start: StartingPoint, case: str, entry: dict, profile: SliceProfile, factor: float,
               overrides: dict | None = None) -> Plans:
    """The plans of a one-case ssft dataset: the case (its fingerprint `entry`) planned as the planner plans any
    target case at the prediction's `factor`, with the starting network and normalisation (and its ssft sampler
    options when the start is a dataset's ssft run), then `overrides` (dotted keys, as isr_train --set)."""
    plans = plan_dataset({"dataset": f"adapted_{case}", "kind": str(DatasetKind.TARGET),
                          "cases": {case: {**entry, "slice_profile": profile.as_record()}}},
                         start.device, factor=factor)
    plans.network = copy.deepcopy(start.network)
    plans.normalisation = start.normalisation
    if start.plans is not None and start.plans.is_target:
        plans.sampler = copy.deepcopy(start.plans.sampler)
    for key, value in (overrides or {}).items():
        set_plans_value(plans, key, value)
    return plans


def _training_case(volume: Volume, case: str, axis: int, entry: dict, plans: Plans) -> tuple[np.ndarray, dict]:
    """(slices-first normalised array cropped to the foreground, the sampler's properties) of the case."""
    box = crop_box(entry["foreground_bbox"], entry["shape"], axis)
    array, inversion = prepare_volume(volume, axis, plans.normalisation, box)
    spacing = [volume.spacing[a] for a in inversion.transpose_forward]
    return array, {"case": case, "spacing": spacing, "slice_profile": plans.cases[case].slice_profile.plan_record(),
                   "noise_sigma": normalised_noise_sigma(volume, inversion)}


_APPEARANCES: dict[tuple, list[Appearance]] = {}  # per preprocessed dataset: read once per process, not per case


def dataset_appearances(plans: Plans | None) -> list[Appearance] | None:
    """The appearance of every case of the dataset the start was fine-tuned on (None: the start was not fine-tuned
    on target scans, or their preprocessed data is not on this machine)."""
    if plans is None or not plans.is_target:
        return None
    done = paths.preprocessed_folder() / plans.dataset / DONE_FILE
    try:
        key = (str(done.resolve()), done.stat().st_mtime_ns)  # preprocessing again gives a new key
        if key not in _APPEARANCES:
            _APPEARANCES[key] = [appearance(array, properties)
                                 for array, properties in load_training_cases(plans.dataset, plans)]
        return _APPEARANCES[key]
    except (IsrnetError, OSError):
        return None


def _with_family(start: StartingPoint, case: AdaptationCase) -> SliceProfile:
    """The profile with a family the training pairs can use: the starting plans' for a case they know, else, when
    only the thickness was given (prediction needs no family), the family estimated at that thickness."""
    profile = case.slice_profile
    planned = start.plans.case(case.name) if start.plans is not None else None
    if planned is not None and planned.slice_profile is not None:
        return profile.with_family(planned.slice_profile.family, ProfileSource.PLANS)
    if profile.family_source != ProfileSource.NOT_DECIDED:
        return profile
    stack = slices_first(case.volume, case.slice_axis)
    decided = decide_slice_profile(stack.array, stack.spacing, declared_thickness_mm=profile.thickness_mm)
    return profile.with_family(decided.family, decided.family_source)


def adapt_to_case(start: StartingPoint, case: AdaptationCase, options: AdaptationOptions,
                  save_to: Path | None = None) -> Adapted:
    """Fine-tune a copy of `start` on `case` alone and return the weights the guard chose with the record for the
    sidecar. With `save_to` (a folder), the chosen weights are kept there as `<case>.pth` with provenance."""
    started = time.time()
    profile = _with_family(start, case)
    entry = volume_entry(case.volume, case.source or case.name, case.slice_axis)
    plans = case_plans(start, case.name, entry, profile, case.factor, options.plans_overrides)
    overrides = {"device": start.device, "seed": options.seed, "workers": options.workers, "tag": case.name,
                 "iterations": options.iterations, "init": start.weights_file}
    if options.minutes is not None:
        overrides["budget_minutes"] = options.minutes
    config = TrainingConfig.from_plans(plans, "ssft", overrides)
    config.extra["trained_factors"] = list(start.trained_factors) if start.trained_factors else None
    training_case = _training_case(case.volume, case.name, case.slice_axis, entry, plans)
    need = adaptation_need(appearance(*training_case), dataset_appearances(start.plans))
    if not need.adapt and options.when == "unlike":
        record = {"start_weights": start.description, "start_weights_file": start.weights_file, "iterations": 0,
                  "seconds": round(time.time() - started, 1), "kept": "start", "skipped": need.reason,
                  "need": need.as_record(), "slice_profile": profile.as_record()}
        return Adapted(start.weights, start.network, record, True, 0, skipped=True)
    samplers = build_samplers(plans.sampler, [training_case], plans.network["kwargs"]["context"])
    weights = {key: value.detach().cpu().clone() for key, value in start.weights.items()}
    with tempfile.TemporaryDirectory(prefix="isrnet_adapt_") as folder:
        trainer = Trainer(config, samplers[0], samplers[1], Path(folder), plans,
                          Initialisation(weights, start.description, start.weights_file), command_start=started,
                          command=command_line(), witness_cases=[training_case])
        trainer.run()
        final = load_checkpoint(Path(folder) / "checkpoint_final.pth")
        guard = trainer.guard or {}
        record = {"start_weights": start.description, "start_weights_file": start.weights_file,
                  "iterations": trainer.iteration, "seconds": round(time.time() - started, 1),
                  "budget_minutes": options.minutes, "fixed_iterations": options.iterations, "seed": options.seed,
                  "kept": guard.get("kept"), "guard": guard, "need": need.as_record(),
                  "slice_profile": profile.as_record(),
                  "threads": trainer.threads}
        if save_to is not None:
            record["saved_weights"] = str(_save_adapted(Path(folder) / "checkpoint_final.pth", save_to, case, start,
                                                        record))
    return Adapted(final["state_dict"], final["network"], record, guard.get("kept") == "start", trainer.iteration)


def _save_adapted(checkpoint: Path, folder: Path, case: AdaptationCase, start: StartingPoint, record: dict) -> Path:
    """`folder/<case>.pth` (atomically) with `<case>.json` provenance and the starting plans beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{case.name}.pth"
    content = load_checkpoint(checkpoint)
    content.pop("optimizer", None)  # weights to predict with, not a run to resume
    content["adapted_to"] = case.name
    save_checkpoint(content, target)
    if start.plans is not None:
        save_json(start.plans.as_json(), folder / "plans.json")
    provenance = {"case": case.name, "input": str(case.source) if case.source else None, "weights": target.name,
                  **{key: value for key, value in record.items() if key != "saved_weights"},
                  "command": command_line(), "isrnet_version": __version__, "torch_version": torch.__version__,
                  "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    save_json(provenance, folder / f"{case.name}.json")
    return target
