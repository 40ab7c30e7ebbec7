"""The planning entry points (what `isr_extract_fingerprint`, `isr_plan`, `isr_preprocess` and
`isr_plan_and_preprocess` call), each taking a dataset ID and saving its result where the next step finds it.

    from isrnet.experiment_planning import plan_and_preprocess
    plans = plan_and_preprocess("001", PlanOptions(overrides={"training.loss": "l2"}))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isrnet.datasets import resolve_dataset
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import extract_fingerprint, fingerprint_path
from isrnet.experiment_planning.planner import plan_dataset
from isrnet.plans import CasePlan, Plans
from isrnet.experiment_planning.plans_file import load_plans, plans_path
from isrnet.preprocessing.preprocessor import preprocess_dataset
from isrnet.stages import DatasetKind, stage_for_kind
from isrnet.utilities.files import load_json, save_json


@dataclass
class PlanOptions:
    device: str = "cpu"  # the device the plan sizes patches and batches for
    factor: float | None = None  # for every case (default: slice spacing / finest in-plane spacing)
    target_spacing: float | None = None  # mm between output slices (alternative to factor)
    budget_minutes: float | None = None  # training budget of the dataset's stage
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted plans keys, as `--set`


def load_fingerprint(dataset: str) -> dict:
    path = fingerprint_path(dataset)
    if not path.is_file():
        raise IsrnetError(f"dataset {dataset} has no fingerprint; run: isr_extract_fingerprint -d {dataset}")
    return load_json(path)


def plan_experiment(dataset: str | int, options: PlanOptions | None = None) -> Plans:
    """plans.json from the saved fingerprint; returns the plans."""
    options = options or PlanOptions()
    name = resolve_dataset(dataset)
    plans = plan_dataset(load_fingerprint(name), options.device, options.factor, options.target_spacing,
                         options.budget_minutes, options.overrides)
    save_json(plans.as_json(), plans_path(name))
    return plans


def preprocess(dataset: str | int, workers: int = 2) -> None:
    """The preprocessed arrays of every planned case."""
    name = resolve_dataset(dataset)
    preprocess_dataset(name, load_fingerprint(name), load_plans(name), workers)


def plan_and_preprocess(dataset: str | int, options: PlanOptions | None = None, workers: int = 2) -> Plans:
    """Fingerprint, plan and preprocess one raw dataset; returns the plans."""
    name = resolve_dataset(dataset)
    extract_fingerprint(name, workers)
    plans = plan_experiment(name, options)
    preprocess(name, workers)
    return plans


def _profile_text(plan: CasePlan, case: dict) -> str:
    """Thickness and family with their sources; the estimate's confidence and any note from the fingerprint."""
    profile = plan.slice_profile
    text = (f"thickness {profile.thickness_mm:.2f} mm ({profile.thickness_source}"
            + (f", confidence {profile.confidence:.2f}" if profile.thickness_source == "estimated" else "")
            + f"), {profile.family} profile ({profile.family_source})")
    notes = (case.get("slice_profile") or {}).get("notes", [])
    return text + "".join(f"; {note}" for note in notes)


def describe_plan(plans: Plans, fingerprint: dict) -> str:
    """What the planner decided, one line per case (printed by isr_plan)."""
    training = plans.training
    lines = [f"{plans.dataset} ({plans.kind}): stage {stage_for_kind(plans.kind).name}, patch {training.patch_size}, "
             f"batch {training.batch_size}, budget {training.budget_minutes:g} min, loss {training.loss}"
             + (f"; overrides: {', '.join(f'{k}={v}' for k, v in plans.overrides.items())}"
                if plans.overrides else "")]
    if plans.kind == DatasetKind.VIDEO:
        return "\n".join(lines + [f"  {len(plans.cases)} clip(s)"])
    for case, plan in plans.cases.items():
        spacing = "x".join(f"{s:g}" for s in fingerprint["cases"][case]["spacing"])
        if plan.skip:
            lines.append(f"  {case}: skipped, {plan.reason or 'skip set'}")
        elif plans.kind == DatasetKind.HR_MR:
            lines.append(f"  {case}: isotropic {spacing} mm, every axis used")
        else:
            frames = f", {plan.frames} frames" if plan.frames > 1 else ""
            lines.append(f"  {case}: slice axis {plan.slice_axis}, spacing {spacing} mm{frames}, factor "
                         f"x{plan.factor:g}, {_profile_text(plan, fingerprint['cases'][case])}")
    return "\n".join(lines)
