"""Planner: fingerprint + device + overrides -> plans dict (configuration as data, no I/O).

Per case: slice axis, transpose, upsampling factor (slice spacing / finest in-plane spacing, a real
number), slice profile and thickness; near-isotropic cases are skipped with a reason. Per dataset:
in-plane patch and batch size from a memory budget, normalisation, time budgets, stage datasets and
the (fixed) network. Every value can be overridden; overrides are recorded in `plans["overrides"]`.
"""
from __future__ import annotations

import copy
from typing import Any

from isrnet import configuration as cfg
from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import NEAR_ISOTROPIC_RATIO, ratio_within, transpose_for

PLANNER_NAME = "DefaultPlanner"


def _case_plan(name: str, case: dict, factor: float | None, target_spacing: float | None,
               profile: str) -> dict:
    axis = case["slice_axis"]
    forward, backward = transpose_for(axis)
    slice_spacing = case["slice_spacing"]
    finest = min(case["in_plane_spacing"])
    thickness = case["slice_thickness"] or slice_spacing
    plan = {"slice_axis": axis, "transpose_forward": forward, "transpose_backward": backward,
            "spacing": case["spacing"], "slice_spacing": slice_spacing, "in_plane_spacing": case["in_plane_spacing"],
            "slice_thickness": thickness, "thickness_source": case["thickness_source"] or "spacing (default)",
            "slice_profile": profile, "skip": False, "reason": ""}
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
    plan["target_slice_spacing"] = slice_spacing / chosen
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
           if not ratio_within(max(case["spacing"]) / min(case["spacing"]), cfg.ISOTROPY_TOLERANCE)]
    if bad:
        raise IsrnetError(f"dataset {fingerprint['dataset']} is of kind hr_mr but these volumes are not "
                          f"isotropic (tolerance {cfg.ISOTROPY_TOLERANCE}): {'; '.join(bad)}. Resample them "
                          f"to isotropic voxels or set kind 'target'")


def plan_dataset(fingerprint: dict, device: str = "cpu", factor: float | None = None,
                 target_spacing: float | None = None, budget_minutes: float | None = None,
                 overrides: dict[str, Any] | None = None) -> dict:
    """The plans dict for a fingerprint. `overrides` maps dotted keys ('training.lr') to values."""
    if device not in cfg.MEMORY_BUDGET_BYTES:
        raise IsrnetError(f"unknown device '{device}'; use cpu or cuda")
    kind = fingerprint["kind"]
    network = copy.deepcopy(cfg.DEFAULT_NETWORK)
    plans: dict[str, Any] = {"plans_name": "isrnetPlans", "planner": PLANNER_NAME, "dataset": fingerprint["dataset"],
                             "kind": kind, "device": device, "network": network,
                             "preprocessor": "DefaultPreprocessor", "normalization": "percentile_0.5_99.5",
                             "stage_datasets": dict(cfg.DEFAULT_STAGE_DATASETS)}
    stage = {"target": "ssft", "hr_mr": "mrft", "video": "video"}[kind]
    budget = cfg.DEFAULT_BUDGET_MINUTES[device][stage] if budget_minutes is None else float(budget_minutes)
    if kind == "video":
        extent = min(min(c["height"], c["width"]) for c in fingerprint["cases"].values())
        plans["cases"] = {name: {"frames": c["frames"], "height": c["height"], "width": c["width"], "skip": False}
                          for name, c in fingerprint["cases"].items()}
    else:
        if kind == "hr_mr":  # isotropic material: every axis can play the slice axis
            _check_isotropic(fingerprint)
            plans["cases"] = {name: {"spacing": case["spacing"], "skip": False}
                              for name, case in fingerprint["cases"].items()}
        else:
            plans["cases"] = {name: _case_plan(name, case, factor, target_spacing, "gaussian")
                              for name, case in fingerprint["cases"].items()}
        _check_not_all_skipped(fingerprint["dataset"], plans["cases"])
        extents = [min(b[1] - b[0] for i, b in enumerate(c["foreground_bbox"])
                       if i != c["slice_axis"] or kind == "hr_mr")
                   for name, c in fingerprint["cases"].items() if not plans["cases"][name]["skip"]]
        extent = min(extents)  # skipped cases are never trained on: they do not limit the patch
    patch, batch = patch_and_batch(extent, device, network)
    plans["training"] = {"stage": stage, "patch_size": patch, "batch_size": batch, "budget_minutes": budget,
                         "lr": 1e-3, "weight_decay": 0.0, "loss": "l1",
                         "validation_every": 50, "seed": 12345}
    plans["sampler"] = _sampler_defaults(stage)
    plans["overrides"] = {}
    for key, value in (overrides or {}).items():
        set_dotted(plans, key, value)
        plans["overrides"][key] = value
    for key, value in (("factor", factor), ("target_spacing", target_spacing), ("budget_minutes", budget_minutes)):
        if value is not None:
            plans["overrides"][key] = value
    _check_not_all_skipped(fingerprint["dataset"], plans["cases"])
    return plans


def _check_not_all_skipped(dataset: str, cases: dict) -> None:
    if all(case["skip"] for case in cases.values()):
        raise IsrnetError(f"dataset {dataset}: every case was skipped "
                          f"({next(iter(cases.values()))['reason']})")


def _sampler_defaults(stage: str) -> dict:
    if stage == "video":
        return {"name": "video", "frame_step_range": [2, 8], "uneven_steps": True, "targets_per_sample": 3}
    if stage == "mrft":
        return {"name": "mrft", "factor_range": [2.0, 8.0], "thickness_ratio_range": [0.0, 1.5],
                "profiles": ["gaussian", "rect"], "targets_per_sample": 3, "intensity_augmentation": True}
    return {"name": "ssft", "pairs": "inplane", "targets_per_sample": 3, "validation_fraction": 0.1}


def set_dotted(content: dict, key: str, value: Any) -> None:
    """content['a']['b'] = value for key 'a.b'; unknown keys are an error (typos must not pass silently)."""
    parts = key.split(".")
    node = content
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise IsrnetError(f"plans have no key '{key}' (at '{part}'); see plans.json for the valid keys")
        node = node[part]
    if not isinstance(node, dict) or (parts[-1] not in node and parts[0] != "cases"):
        raise IsrnetError(f"plans have no key '{key}'; see plans.json for the valid keys")
    node[parts[-1]] = value
