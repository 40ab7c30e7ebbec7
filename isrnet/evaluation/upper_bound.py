"""The supervised upper bound: the same network, trained with the ssft budget on pairs cut from referenceTr/.

Users cannot have this (they have no references); the benchmark reports it to show how far self-supervised
fine-tuning is from what paired data would give. It starts from the same weights ssft would start from.
"""
from __future__ import annotations

import time

import numpy as np

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.evaluation.benchmark import Case
from isrnet.imageio.geometry import slices_first
from isrnet.preprocessing.preprocessor import normalise_percentiles
from isrnet.training.config import TrainingConfig
from isrnet.training.initialization import Initialisation, resolve_initialisation
from isrnet.training.samplers.mrft import MrftSampler
from isrnet.training.trainer import Trainer

RUN = "supervised__upper_bound"


def train_upper_bound(dataset: str, plans: dict, cases: list[Case], budget_minutes: float | None,
                      device: str = "cpu") -> None:
    start = time.time()
    hr_cases, factors, ratios = [], [], []
    for case in cases:
        stack = slices_first(case.reference, case.slice_axis)
        hr_cases.append((normalise_percentiles(stack.array)[0], {"case": case.name}))
        factors.append(case.low.spacing[case.slice_axis] / stack.spacing[0])
        ratios.append(case.thickness / case.low.spacing[case.slice_axis])
    sampler = {"factor_range": [float(np.mean(factors))] * 2, "thickness_ratio_range": [float(np.mean(ratios))] * 2,
               "profiles": ["gaussian"], "intensity_augmentation": False, "axes": [0]}
    config = TrainingConfig.from_plans(plans, "supervised", {"tag": "upper_bound", "device": device,
                                                             "budget_minutes": budget_minutes, "sampler": sampler})
    config.extra["trained_factors"] = sampler["factor_range"]
    try:
        initialisation = resolve_initialisation("ssft", plans["network"], plans["stage_datasets"], None, False)
    except IsrnetError:
        initialisation = Initialisation(None, "from scratch (no mrft result or shipped weights)")
    train = MrftSampler(hr_cases, context=config.network["kwargs"]["context"], split="train", **sampler)
    validation = MrftSampler(hr_cases, context=config.network["kwargs"]["context"], split="val", **sampler)
    output = paths.results_folder() / dataset / RUN
    Trainer(config, train, validation, output, plans, initialisation, command_start=start).run()
