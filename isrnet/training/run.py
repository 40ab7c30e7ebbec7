"""The training entry point: `run_training(dataset, stage, options) -> Run` (what `isr_train` calls).

    from isrnet.training import TrainingOptions, run_training
    run = run_training("001", "ssft", TrainingOptions(iterations=200, tag="short"))
    run.final  # $isrnet_results/Dataset001_DemoBrain/ssft__short/checkpoint_final.pth

`train_run` is the one place that assembles a Trainer; the benchmark's supervised upper bound uses it too,
with samplers over the references instead of the preprocessed dataset.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from isrnet.datasets import resolve_dataset
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.experiment_planning.plans_file import load_plans, set_plans_value
from isrnet.preprocessing.preprocessor import load_training_cases
from isrnet.runs import Run
from isrnet.stages import SCRATCH_LR, STAGES, Stage, stage as stage_named
from isrnet.training.config import TrainingConfig
from isrnet.training.samplers.base import PairSampler
from isrnet.training.distributed import init_distributed, shutdown_distributed
from isrnet.training.initialisation import Initialisation, resolve_initialisation
from isrnet.training.samplers import build_samplers
from isrnet.training.trainer import Trainer
from isrnet.utilities.device import resolve_device


@dataclass
class TrainingOptions:
    """What a caller may set for one run; None keeps the plans' value (see TrainingConfig for the meaning)."""
    iterations: int | None = None  # fixed count (reproducible); None: derived from the budget
    budget_minutes: float | None = None  # wall-clock cap of the whole call
    lr: float | None = None
    batch_size: int | None = None
    patch_size: int | None = None
    device: str | None = None  # None: the plans' device
    seed: int | None = None
    workers: int | None = None  # background sampling processes (0: none)
    init: str | None = None  # start from these weights
    from_scratch: bool = False
    tag: str | None = None  # run folder <stage>__<tag>
    continue_training: bool = False  # resume from checkpoint_latest.pth (with iterations: extend to that)
    validation_batches: int | None = None
    checkpoint_every_seconds: float | None = None
    plans_overrides: dict[str, Any] = field(default_factory=dict)  # dotted plans keys, as `--set`
    command: str | None = None  # recorded as provenance (default: this process's command line)
    started: float | None = None  # when the command started: the budget counts from here (default: now)

    def config_overrides(self) -> dict[str, Any]:
        skip = ("plans_overrides", "command", "started")
        return {key: value for key, value in asdict(self).items() if key not in skip}

    def as_command(self, dataset: str, stage: str) -> str:
        """The `isr_train` command line that sets these options (for provenance of runs started from Python)."""
        flags = {"init": "-init", "device": "-device", "continue_training": "--c"}
        plans_keys = ("validation_batches", "checkpoint_every_seconds")  # no isr_train flag: plans keys
        arguments, settings = ["isr_train", str(dataset), stage], dict(self.plans_overrides)
        for key, value in self.config_overrides().items():
            if value is None or value is False:
                continue
            if key in plans_keys:
                settings[f"training.{key}"] = value
                continue
            flag = flags.get(key, f"--{key.replace('_', '-')}")
            arguments += [flag] if value is True else [flag, str(value)]
        if settings:
            arguments += ["--set", *(f"{key}={json.dumps(value)}" for key, value in settings.items())]
        return shlex.join(arguments)


def sizes_for_device(plans: Plans, device: str, set_now: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """Patch and batch size for training on `device`: the plans' own for the device they were made for,
    else that device's from `training.sizes_by_device` (a CPU plan trained with -device cuda gets CUDA sizes),
    unless `training.patch_size`/`batch_size` were overridden (at planning, or now: `set_now`), which wins."""
    training = plans.training
    sizes = {"patch_size": training.patch_size, "batch_size": training.batch_size}
    if device == plans.device:
        return sizes
    overridden = set(plans.overrides) | set(set_now)
    return {key: value if f"training.{key}" in overridden else training.sizes_by_device[device][key]
            for key, value in sizes.items()}


def trained_factor_range(stage: Stage, plans: Plans, sampler: dict) -> list[float]:
    """The upsampling factors a run trains for (stored in checkpoints; prediction warns far beyond them)."""
    if stage.factor_range_key:
        return [float(v) for v in sampler[stage.factor_range_key]]
    factors = [c.factor for c in plans.cases.values() if not c.skip]
    largest = max(factors) * (3 if sampler.get("pairs", "inplane") != "inplane" else 1)
    return [float(min(factors)), float(largest)]


def train_run(run: Run, config: TrainingConfig, samplers: tuple[PairSampler, PairSampler], plans: Plans,
              initialisation: Initialisation, command: str | None = None, started: float | None = None,
              witness_cases: list | None = None) -> Run:
    """Train `run` (one process, or every rank under torchrun) and return it."""
    if run.finished and not config.continue_training:
        raise IsrnetError(f"{run.folder} already holds a finished run; use --c --iterations N to extend it, "
                          f"or --tag NAME for a new variant")
    distributed = init_distributed(config.device)
    try:
        Trainer(config, samplers[0], samplers[1], run.folder, plans, initialisation, distributed, started,
                command, witness_cases).run()
    finally:
        shutdown_distributed(distributed)
    return run


def _schedule(config: TrainingConfig, options: TrainingOptions, overridden: set[str], run: Run) -> None:
    """The learning-rate schedule when none was chosen now: a continued run keeps its recorded one, and
    --from-scratch trains at the from-scratch rate rather than the plan's fine-tuning rate."""
    if options.lr is not None or {"training.lr", "training.warmup_fraction"} & overridden:
        return
    record = run.record() if config.continue_training else None
    if record is not None:
        config.lr = record.config.get("lr", config.lr)
        config.warmup_fraction = record.config.get("warmup_fraction", config.warmup_fraction)
    elif config.from_scratch and config.lr != SCRATCH_LR:
        print(f"isrnet: notice: --from-scratch trains at the from-scratch learning rate {SCRATCH_LR:g} without "
              f"warm-up, not the plan's fine-tuning {config.lr:g} (set --lr to choose)", file=sys.stderr)
        config.lr, config.warmup_fraction = SCRATCH_LR, 0.0


def _notice_unmeasured_noise(dataset: str, sampler: dict, cases: list) -> None:
    """ssft's noise matching needs each case's noise level; data preprocessed before it was recorded lacks it."""
    unmeasured = [properties["case"] for _, properties in cases if "noise_sigma" not in properties]
    if sampler.get("name") == "ssft" and sampler.get("noise_matching", True) and unmeasured:
        print(f"isrnet: notice: {len(unmeasured)} case(s) of {dataset} were preprocessed before isrnet measured "
              f"the noise level (e.g. {unmeasured[0]}); they are trained without noise matching. Run "
              f"isr_plan_and_preprocess -d {dataset} again to measure it", file=sys.stderr)


def run_training(dataset: str | int, stage: str, options: TrainingOptions | None = None) -> Run:
    """Train `stage` on a planned and preprocessed dataset; returns the finished run."""
    options = options or TrainingOptions()
    started = options.started or time.time()
    chosen = stage_named(stage)
    if options.init and options.from_scratch:
        raise IsrnetError("-init and --from-scratch exclude each other")
    dataset = resolve_dataset(dataset)
    plans = load_plans(dataset)
    set_now = [changed for key, value in options.plans_overrides.items()
               for changed in set_plans_value(plans, key, value)]
    if plans.kind != chosen.dataset_kind:
        raise IsrnetError(f"stage {stage} trains on a dataset of kind '{chosen.dataset_kind}', but {dataset} "
                          f"is of kind '{plans.kind}'")
    overrides = options.config_overrides()
    overrides["device"] = resolve_device(options.device or plans.device)
    sizes = sizes_for_device(plans, overrides["device"], set_now)
    if overrides["device"] != plans.device:
        print(f"isrnet: notice: the plans were made for {plans.device}; training on "
              f"{overrides['device']} with its sizes from the plans (patch {sizes['patch_size']}, batch "
              f"{sizes['batch_size']})", file=sys.stderr)
    overrides = {**sizes, **{key: value for key, value in overrides.items() if value is not None}}
    config = TrainingConfig.from_plans(plans, stage, overrides)
    _schedule(config, options, set(plans.overrides) | set(set_now), Run(dataset, stage, options.tag))
    cases = load_training_cases(dataset, plans)  # first: it says clearly when nothing is left to train on
    _notice_unmeasured_noise(dataset, config.sampler, cases)
    config.extra["trained_factors"] = trained_factor_range(STAGES[stage], plans, config.sampler)
    run = Run(dataset, stage, options.tag)
    if config.continue_training:  # the weights come from checkpoint_latest.pth; nothing to look for
        initialisation = Initialisation(None, "resumed from checkpoint_latest.pth")
    else:
        initialisation = resolve_initialisation(stage, plans.network, plans.stage_datasets, config.init,
                                                config.from_scratch)
    samplers = build_samplers(config.sampler, cases, config.network["kwargs"]["context"])
    return train_run(run, config, samplers, plans, initialisation, options.command, started,
                     cases if stage == "ssft" else None)
