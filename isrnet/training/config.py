"""The trainer's typed configuration: built from plans.json, then CLI overrides; recorded in debug.json."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from isrnet import configuration as cfg
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.training.guard import check_guard
from isrnet.runs import Run


@dataclass
class TrainingConfig:
    stage: str
    dataset: str
    network: dict
    sampler: dict
    patch_size: int
    batch_size: int
    lr: float
    budget_minutes: float
    iterations: int | None = None  # fixed count; None = derived once from the budget
    weight_decay: float = 0.0
    warmup_fraction: float = 0.0  # linear learning-rate warm-up over this share of the run
    loss: str = "l1"  # see training/losses.py
    seed: int = 12345
    device: str = "cpu"
    workers: int = 1  # background sampling processes (0 = in the main process)
    validation_every: int = 50
    validation_batches: int = 4
    checkpoint_every_seconds: float = 60.0
    guard: str = cfg.DEFAULT_GUARD  # the never-worse guard's rule (training/guard.py)
    witness_margin: float = cfg.DEFAULT_WITNESS_MARGIN  # standard errors the witness's lead must reach
    halfway_weights: bool = cfg.DEFAULT_HALFWAY_WEIGHTS  # the witness's fallback: the start's and the run's mean
    init: str | None = None
    from_scratch: bool = False
    tag: str | None = None
    continue_training: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def run_name(self) -> str:
        return Run(self.dataset, self.stage, self.tag).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_plans(cls, plans: Plans, stage: str, overrides: dict[str, Any]) -> "TrainingConfig":
        """Plans' training section, then non-None CLI overrides (unknown names are an error)."""
        training = plans.training
        values = {"stage": stage, "dataset": plans.dataset, "network": plans.network,
                  "sampler": dict(plans.sampler), "patch_size": training.patch_size,
                  "batch_size": training.batch_size, "lr": training.lr,
                  "warmup_fraction": training.warmup_fraction,
                  "budget_minutes": training.budget_minutes, "weight_decay": training.weight_decay,
                  "loss": training.loss, "seed": training.seed, "validation_every": training.validation_every,
                  "validation_batches": training.validation_batches,
                  "checkpoint_every_seconds": training.checkpoint_every_seconds, "guard": training.guard,
                  "witness_margin": training.witness_margin, "halfway_weights": training.halfway_weights}
        known = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise IsrnetError(f"unknown training option '{key}'")
            values[key] = value
        check_guard(values["guard"])  # a misspelt rule is an error now, not after the run
        if not isinstance(values["witness_margin"], (int, float)) or not values["witness_margin"] >= 0:
            raise IsrnetError(f"training.witness_margin {values['witness_margin']} must be >= 0 (standard errors)")
        if not isinstance(values["halfway_weights"], bool):
            raise IsrnetError(f"training.halfway_weights {values['halfway_weights']!r} must be true or false")
        return cls(**values)
