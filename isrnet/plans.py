"""The typed plans: one dataclass per level; plans.json is their serialised form (`Plans.as_json`/`from_json`).

    plans = load_plans("Dataset001_DemoBrain")          # experiment_planning/plans_file.py
    plans.training.batch_size, plans.cases["case_001"].slice_profile.thickness_mm

Plans written by earlier isrnet versions (format 3: a case's thickness and family as separate keys, the
American `normalization`) are migrated when read (`migrated`), so results folders and model archives made before
keep working. Geometry facts stay in the fingerprint: the plans hold decisions only.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from isrnet.acquisition.slice_profile import DEFAULT_FAMILY, ProfileSource, SliceProfile
from isrnet import configuration as cfg
from isrnet.errors import IsrnetError
from isrnet.stages import DatasetKind

PLANS_FORMAT = 4  # 4: a case's slice profile as one record, typed plans; 3: thickness and family as separate keys
MIGRATABLE_FORMATS = (3,)
# a case's format-3 keys -> their format-4 names
RENAMED_CASE_KEYS = {"slice_thickness": "slice_profile.thickness_mm", "slice_profile": "slice_profile.family"}


@dataclass
class CasePlan:
    """One case's decisions. Target cases have a slice axis, a factor, a slice profile and their frame count (a
    record of the fingerprint, not a setting); the cases of video and hr_mr datasets only say whether they are
    used."""
    skip: bool = False
    reason: str = ""  # why it is skipped
    slice_axis: int | None = None
    factor: float | None = None
    slice_profile: SliceProfile | None = None
    frames: int = 1  # a time series (4D image) is one case of this many frames, preprocessed as [T, Z, Y, X]

    def as_json(self) -> dict:
        if self.slice_axis is None:
            return {"skip": self.skip}
        return {"slice_axis": self.slice_axis, "factor": self.factor,
                "slice_profile": self.slice_profile.plan_record() if self.slice_profile else None,
                "frames": self.frames, "skip": self.skip, "reason": self.reason}

    @classmethod
    def from_json(cls, record: dict) -> "CasePlan":
        """A case's plan; plans written before time series were one case (no `frames`) have 3D cases."""
        profile = record.get("slice_profile")
        return cls(bool(record.get("skip", False)), record.get("reason", ""), record.get("slice_axis"),
                   record.get("factor"), SliceProfile.from_record(profile) if profile else None,
                   int(record.get("frames", 1)))


@dataclass
class TrainingPlan:
    """The trainer's settings (TrainingConfig starts from these)."""
    patch_size: int
    batch_size: int
    budget_minutes: float
    lr: float
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    loss: str = "l1"
    validation_every: int = 50
    validation_batches: int = 4
    checkpoint_every_seconds: float = 60.0
    seed: int = 12345
    guard: str = cfg.DEFAULT_GUARD  # the never-worse guard's rule (training/guard.py)
    witness_margin: float = cfg.DEFAULT_WITNESS_MARGIN  # standard errors the witness's lead must reach
    halfway_weights: bool = cfg.DEFAULT_HALFWAY_WEIGHTS  # the witness's fallback: the start's and the run's mean
    sizes_by_device: dict[str, dict[str, int]] = field(default_factory=dict)  # patch and batch size per device


@dataclass
class Plans:
    dataset: str
    kind: DatasetKind
    device: str
    network: dict  # networks.build_network's configuration
    normalisation: str
    stage_datasets: dict[str, str]  # stage -> the dataset whose run it starts from
    cases: dict[str, CasePlan]
    training: TrainingPlan
    sampler: dict  # the stage's sampler options; "name" picks the sampler (training/samplers/)
    overrides: dict[str, Any] = field(default_factory=dict)  # what --set and the planner's options changed
    plans_format: int = PLANS_FORMAT

    def as_json(self) -> dict:
        record = {"plans_format": self.plans_format, "dataset": self.dataset, "kind": str(self.kind),
                  "device": self.device, "network": copy.deepcopy(self.network), "normalisation": self.normalisation,
                  "stage_datasets": dict(self.stage_datasets),
                  "cases": {name: case.as_json() for name, case in self.cases.items()},
                  "training": asdict(self.training), "sampler": copy.deepcopy(self.sampler),
                  "overrides": copy.deepcopy(self.overrides)}
        return record

    @classmethod
    def from_json(cls, record: dict, where: str = "plans") -> "Plans":
        """Plans from their JSON form (the current format; see `migrated` for earlier ones)."""
        try:
            training = {f.name: record["training"][f.name] for f in fields(TrainingPlan)
                        if f.name in record["training"]}
            return cls(record["dataset"], DatasetKind(record["kind"]), record.get("device", "cpu"),
                       copy.deepcopy(record["network"]), record["normalisation"], dict(record["stage_datasets"]),
                       {name: CasePlan.from_json(case) for name, case in record["cases"].items()},
                       TrainingPlan(**training), copy.deepcopy(record["sampler"]),
                       copy.deepcopy(record.get("overrides", {})), record.get("plans_format", PLANS_FORMAT))
        except (KeyError, TypeError, ValueError) as error:
            raise IsrnetError(f"{where}: not valid plans ({type(error).__name__}: {error})") from None

    def copy(self) -> "Plans":
        return Plans.from_json(self.as_json())

    @property
    def is_target(self) -> bool:
        return self.kind == DatasetKind.TARGET

    def case(self, name: str) -> CasePlan | None:
        """The plan of case `name` when these are a target dataset's plans that know it."""
        return self.cases.get(name) if self.is_target else None


def migrated(record: dict) -> dict:
    """A plans.json record of format 3 in the current format (a format-4 record is returned unchanged)."""
    if record.get("plans_format") not in MIGRATABLE_FORMATS:
        return record
    record = copy.deepcopy(record)
    record["plans_format"] = PLANS_FORMAT
    if "normalization" in record:
        record["normalisation"] = record.pop("normalization")
    for case in record.get("cases", {}).values():
        if "slice_thickness" not in case:
            continue
        case["slice_profile"] = {
            "thickness_mm": case.pop("slice_thickness"), "family": case.pop("slice_profile", DEFAULT_FAMILY),
            "thickness_source": case.pop("thickness_source", str(ProfileSource.SPACING)),
            "family_source": case.pop("profile_source", str(ProfileSource.DEFAULT)),
            "confidence": case.pop("profile_confidence", 0.0)}
    record["overrides"] = {_renamed_key(key): value for key, value in record.get("overrides", {}).items()}
    return record


def _renamed_key(key: str) -> str:
    """A format-3 `--set` key of a case (cases.NAME.slice_thickness) under its format-4 name."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "cases" and parts[2] in RENAMED_CASE_KEYS:
        return f"cases.{parts[1]}.{RENAMED_CASE_KEYS[parts[2]]}"
    return key
