"""Planner: fingerprint + device + overrides -> typed plans (configuration as data, no I/O).

Per case: slice axis, upsampling factor (slice spacing / finest in-plane spacing, a real number), slice
profile and thickness, and the frame count of a time series (from the fingerprint); near-isotropic cases are
skipped with a reason. Per dataset: in-plane patch and batch
size from a memory budget, normalisation, time budgets, loss, stage datasets, the sampler's options (from the
stage table) and the (fixed) network. Every setting can be overridden; overrides are recorded in
`plans["overrides"]`. Geometry facts stay in the fingerprint: the plans hold decisions only.
"""
from __future__ import annotations

import copy
from typing import Any

from isrnet import configuration as cfg
from isrnet.acquisition.slice_profile import check_family, profile_of
from isrnet.errors import IsrnetError
from isrnet.plans import PLANS_FORMAT, Plans
from isrnet.experiment_planning.plans_file import set_dotted
from isrnet.imageio.geometry import ISOTROPIC_RATIO, NEAR_ISOTROPIC_RATIO, is_isotropic
from isrnet.intensity import DEFAULT_NORMALISATION, NORMALISATIONS
from isrnet.stages import DatasetKind, stage_for_kind


def _case_plan(name: str, case: dict, factor: float | None, target_spacing: float | None) -> dict:
    slice_spacing = case["slice_spacing"]
    finest = min(case["in_plane_spacing"])
    profile = profile_of(case.get("slice_profile"), slice_spacing)  # none decided for near-isotropic cases
    plan = {"slice_axis": case["slice_axis"], "slice_profile": profile.plan_record(), "frames": case.get("frames", 1),
            "skip": False, "reason": ""}
    if factor is not None:
        chosen = float(factor)
    elif target_spacing is not None:
        chosen = slice_spacing / float(target_spacing)
    else:
        chosen = slice_spacing / finest
    if case["near_isotropic"] and factor is None and target_spacing is None:
        plan.update(skip=True, reason=f"near-isotropic: slice spacing {slice_spacing:g} mm is only "
                                      f"{case['anisotropy']:.2f}x the in-plane {finest:g} mm "
                                      f"(<= {NEAR_ISOTROPIC_RATIO}); nothing to super-resolve")
    if chosen <= 1.0 and not plan["skip"]:
        raise IsrnetError(f"case {name}: factor {chosen:.3g} <= 1 would not add slices; "
                          f"check --factor / --target-spacing")
    plan["factor"] = round(chosen, 4)
    return plan


def feature_bytes_per_sample(patch: int, network: dict) -> int:
    """Rough float32 bytes of activations kept for backward, per training sample."""
    kw = network["kwargs"]
    per_pixel = (kw["context"] * kw["encoder_channels"] * (2 * kw["encoder_blocks"] + 1)
                 + 3 * kw["mixer_channels"] + 4 * 3 * kw["decoder_channels"])
    return int(patch * patch * per_pixel * 4 * 2)


def patch_and_batch(extent: int, device: str, network: dict) -> tuple[int, int]:
    """Largest patch (multiple of 8, <= extent) and batch size that fit the device's memory budget."""
    patch = max(cfg.MIN_PATCH, min(cfg.MAX_PATCH[device], extent) // 8 * 8)
    budget = cfg.MEMORY_BUDGET_BYTES[device]
    while patch > cfg.MIN_PATCH and feature_bytes_per_sample(patch, network) * 2 > budget:
        patch -= 8
    batch = int(max(2, min(cfg.MAX_BATCH[device], budget // feature_bytes_per_sample(patch, network))))
    return patch, batch


def _check_isotropic(fingerprint: dict) -> None:
    bad = [f"{name} (spacing {', '.join(f'{s:g}' for s in case['spacing'])} mm)"
           for name, case in fingerprint["cases"].items()
           if not is_isotropic(case["spacing"])]
    if bad:
        raise IsrnetError(f"dataset {fingerprint['dataset']} is of kind hr_mr but these volumes are not "
                          f"isotropic (spacing ratio <= {ISOTROPIC_RATIO}): {'; '.join(bad)}. Resample them "
                          f"to isotropic voxels or set kind 'target'")


def plan_dataset(fingerprint: dict, device: str = "cpu", factor: float | None = None,
                 target_spacing: float | None = None, budget_minutes: float | None = None,
                 overrides: dict[str, Any] | None = None) -> Plans:
    """The plans for a fingerprint. `overrides` maps dotted keys ('training.lr') to values."""
    if device not in cfg.MEMORY_BUDGET_BYTES:
        raise IsrnetError(f"unknown device '{device}'; use cpu or cuda")
    kind = DatasetKind(fingerprint["kind"])
    network = copy.deepcopy(cfg.DEFAULT_NETWORK)
    plans: dict[str, Any] = {"plans_format": PLANS_FORMAT, "dataset": fingerprint["dataset"], "kind": str(kind),
                             "device": device, "network": network, "normalisation": DEFAULT_NORMALISATION,
                             "stage_datasets": dict(cfg.DEFAULT_STAGE_DATASETS)}
    stage = stage_for_kind(kind)
    budget = stage.budget_minutes[device] if budget_minutes is None else float(budget_minutes)
    if kind == DatasetKind.VIDEO:
        extent = min(min(c["height"], c["width"]) for c in fingerprint["cases"].values())
        plans["cases"] = {name: {"skip": False} for name in fingerprint["cases"]}
    else:
        if kind == DatasetKind.HR_MR:  # isotropic material: every axis can play the slice axis
            _check_isotropic(fingerprint)
            plans["cases"] = {name: {"skip": False} for name in fingerprint["cases"]}
        else:
            plans["cases"] = {name: _case_plan(name, case, factor, target_spacing)
                              for name, case in fingerprint["cases"].items()}
        _check_not_all_skipped(fingerprint["dataset"], plans["cases"])
        extents = [min(b[1] - b[0] for i, b in enumerate(c["foreground_bbox"])
                       if i != c["slice_axis"] or kind == DatasetKind.HR_MR)
                   for name, c in fingerprint["cases"].items() if not plans["cases"][name]["skip"]]
        extent = min(extents)  # skipped cases are never trained on: they do not limit the patch
    patch, batch = patch_and_batch(extent, device, network)
    by_device = {name: dict(zip(("patch_size", "batch_size"), patch_and_batch(extent, name, network)))
                 for name in cfg.MEMORY_BUDGET_BYTES}
    plans["training"] = {"patch_size": patch, "batch_size": batch, "sizes_by_device": by_device,
                         "budget_minutes": budget,
                         "lr": stage.lr, "warmup_fraction": stage.warmup_fraction, "weight_decay": 0.0, "loss": "l1",
                         "validation_every": 50, "validation_batches": 4, "checkpoint_every_seconds": 60.0,
                         "seed": 12345, "guard": cfg.DEFAULT_GUARD, "witness_margin": cfg.DEFAULT_WITNESS_MARGIN,
                         "halfway_weights": cfg.DEFAULT_HALFWAY_WEIGHTS}
    plans["sampler"] = copy.deepcopy(stage.sampler_defaults)
    plans["overrides"] = {}
    for key, value in (overrides or {}).items():
        set_dotted(plans, key, value)
        plans["overrides"][key] = value
    for key, value in (("factor", factor), ("target_spacing", target_spacing), ("budget_minutes", budget_minutes)):
        if value is not None:
            plans["overrides"][key] = value
    _check_not_all_skipped(fingerprint["dataset"], plans["cases"])
    typed = Plans.from_json(plans, f"the plans of {fingerprint['dataset']}")
    _check_choices(typed)
    return typed


def _check_choices(plans: Plans) -> None:
    """String-named choices must name something that exists (an error now, not at training time)."""
    choices = [("normalisation", plans.normalisation, NORMALISATIONS),
               ("training.loss", plans.training.loss, cfg.LOSS_NAMES),
               ("training.guard", plans.training.guard, cfg.GUARD_RULES)]
    for key, value, valid in choices:
        if value not in valid:
            raise IsrnetError(f"{key} '{value}' is unknown; use one of {', '.join(valid)}")
    for name, case in plans.cases.items():
        if case.slice_profile is not None:
            check_family(case.slice_profile.family, f"cases.{name}.slice_profile.family")


def _check_not_all_skipped(dataset: str, cases: dict) -> None:
    if all(case["skip"] for case in cases.values()):
        raise IsrnetError(f"dataset {dataset}: every case was skipped "
                          f"({next(iter(cases.values())).get('reason') or 'skip set'})")
