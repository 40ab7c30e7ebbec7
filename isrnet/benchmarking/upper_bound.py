"""The supervised upper bound: the same network, trained with the ssft budget on pairs cut from referenceTr/.

Users cannot have this (they have no references); the benchmark reports it to show how far self-supervised
fine-tuning is from what paired data would give. It starts from the same weights ssft would start from
(stage 'supervised' in the stage table) and is trained by the one `train_run`.
"""
from __future__ import annotations

import time

import numpy as np

from isrnet.benchmarking.benchmark import Case
from isrnet.plans import Plans
from isrnet.preprocessing.preprocessor import prepare_volume
from isrnet.runs import Run
from isrnet.stages import STAGES
from isrnet.training.config import TrainingConfig
from isrnet.training.initialisation import resolve_initialisation
from isrnet.training.run import sizes_for_device, train_run, trained_factor_range
from isrnet.training.samplers import build_samplers

STAGE = STAGES["supervised"]


def upper_bound_run(dataset: str) -> Run:
    return Run(dataset, STAGE.name, "upper_bound")


def train_upper_bound(dataset: str, plans: Plans, cases: list[Case], budget_minutes: float | None,
                      device: str = "cpu") -> Run:
    start = time.time()
    hr_cases, factors, ratios = [], [], []
    for case in cases:
        array, _ = prepare_volume(case.reference, case.slice_axis, plans.normalisation)
        hr_cases.append((array, {"case": case.name}))
        factors.append(case.low.spacing[case.slice_axis] / case.reference.spacing[case.slice_axis])
        ratios.append(case.slice_profile.thickness_mm / case.low.spacing[case.slice_axis])
    sampler = {**STAGE.sampler_defaults, "factor_range": [float(np.mean(factors))] * 2,
               "thickness_ratio_range": [float(np.mean(ratios))] * 2, "profiles": ["gaussian"],
               "intensity_augmentation": False, "axes": [0]}
    run = upper_bound_run(dataset)
    config = TrainingConfig.from_plans(plans, STAGE.name, {**sizes_for_device(plans, device), "tag": run.tag,
                                                           "device": device, "budget_minutes": budget_minutes,
                                                           "sampler": sampler})
    config.extra["trained_factors"] = trained_factor_range(STAGE, plans, sampler)
    initialisation = resolve_initialisation(STAGE.name, plans.network, plans.stage_datasets, None, False)
    samplers = build_samplers(sampler, hr_cases, config.network["kwargs"]["context"])
    return train_run(run, config, samplers, plans, initialisation, started=start)
