"""Stage name -> the dataset kind it trains on and the sampler that makes its pairs (string-named)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from isrnet import paths
from isrnet.configuration import STAGES
from isrnet.errors import IsrnetError
from isrnet.experiment_planning.fingerprint import MIN_SLICES
from isrnet.preprocessing.preprocessor import preprocessed_cases
from isrnet.training.data_loading import PairSampler
from isrnet.utilities.files import load_json

STAGE_KIND = {"video": "video", "mrft": "hr_mr", "ssft": "target"}


def check_stage(stage: str, plans: dict) -> None:
    if stage not in STAGES:
        raise IsrnetError(f"unknown stage '{stage}'; valid stages: {', '.join(STAGES)}")
    if plans["kind"] != STAGE_KIND[stage]:
        raise IsrnetError(f"stage {stage} trains on a dataset of kind '{STAGE_KIND[stage]}', but {plans['dataset']} "
                          f"is of kind '{plans['kind']}'")


def load_preprocessed(dataset: str) -> list[tuple[np.ndarray, dict]]:
    """(memory-mapped array, properties) of every preprocessed case."""
    folder = paths.preprocessed_folder() / dataset
    return [(np.load(folder / "data" / f"{case}.npy", mmap_mode="r"),
             load_json(folder / "properties" / f"{case}.json")) for case in preprocessed_cases(dataset)]


def _ssft(cases, sampler: dict, context: int, split: str) -> PairSampler:
    from isrnet.training.samplers.ssft import SsftSampler
    for array, properties in cases:
        if array.shape[0] < MIN_SLICES:
            raise IsrnetError(f"case {properties['case']}: {array.shape[0]} slices are too few to train on "
                              f"(>= {MIN_SLICES}); rerun isr_plan_and_preprocess")
    return SsftSampler(cases, sampler.get("pairs", "inplane"), context, sampler.get("targets_per_sample", 3),
                       split, sampler.get("validation_fraction", 0.1))


def _mrft(cases, sampler: dict, context: int, split: str) -> PairSampler:
    from isrnet.training.samplers.mrft import MrftSampler
    return MrftSampler(cases, context=context, split=split, **{k: v for k, v in sampler.items() if k != "name"})


def _video(cases, sampler: dict, context: int, split: str) -> PairSampler:
    from isrnet.training.samplers.video import VideoSampler
    return VideoSampler(cases, context=context, split=split, **{k: v for k, v in sampler.items() if k != "name"})


SAMPLERS: dict[str, Callable[..., PairSampler]] = {"ssft": _ssft, "mrft": _mrft, "video": _video}


def build_samplers(stage: str, dataset: str, sampler: dict, context: int) -> tuple[PairSampler, PairSampler]:
    """(training sampler, validation sampler) for a stage; the validation one draws held-out pairs."""
    cases = load_preprocessed(dataset)
    build = SAMPLERS[sampler.get("name", stage)]
    return build(cases, sampler, context, "train"), build(cases, sampler, context, "val")


def trained_factor_range(stage: str, plans: dict, sampler: dict) -> list[float]:
    """The range of upsampling factors a stage trains for (stored in checkpoints; prediction warns beyond it)."""
    if stage == "video":
        return [float(v) for v in sampler.get("frame_step_range", [2, 8])]
    if stage == "mrft":
        return [float(v) for v in sampler.get("factor_range", [2.0, 8.0])]
    factors = [c["factor"] for c in plans["cases"].values() if not c.get("skip")]
    largest = max(factors) * (3 if sampler.get("pairs", "inplane") != "inplane" else 1)
    return [float(min(factors)), float(largest)]
