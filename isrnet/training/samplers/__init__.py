"""Samplers by name (plans["sampler"]["name"]): each stage's source of training pairs.

A sampler yields `Batch(context, positions, targets, conditioning)` (see base.py); video, mrft and ssft differ
only here, so the one trainer and network serve every stage. Options come from plans["sampler"]; an option a
sampler does not have is an error naming it, never silently ignored.
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.training.samplers.base import PairSampler


def _ssft():
    from isrnet.training.samplers.ssft import SsftSampler
    return SsftSampler


def _mrft():
    from isrnet.training.samplers.mrft import MrftSampler
    return MrftSampler


def _video():
    from isrnet.training.samplers.video import VideoSampler
    return VideoSampler


SAMPLERS: dict[str, Callable[[], type]] = {"ssft": _ssft, "mrft": _mrft, "video": _video}


def build_sampler(options: dict, cases: list[tuple[np.ndarray, dict]], context: int, split: str) -> PairSampler:
    """The sampler plans["sampler"] names, over (array, properties) cases, for 'train' or 'val' pairs."""
    name = options.get("name")
    if name not in SAMPLERS:
        raise IsrnetError(f"unknown sampler '{name}' (plans key sampler.name); known: {', '.join(SAMPLERS)}")
    sampler_class = SAMPLERS[name]()
    accepted = set(inspect.signature(sampler_class).parameters) - {"cases", "context", "split"}
    unknown = sorted(set(options) - accepted - {"name"})
    if unknown:
        raise IsrnetError(f"sampler '{name}' has no option {', '.join(unknown)} (plans key sampler.{unknown[0]}); "
                          f"its options: {', '.join(sorted(accepted))}")
    return sampler_class(cases, context=context, split=split, **{k: v for k, v in options.items() if k != "name"})


def build_samplers(options: dict, cases: list[tuple[np.ndarray, dict]], context: int) -> tuple[PairSampler, PairSampler]:
    """(training sampler, validation sampler); the validation one draws held-out pairs."""
    return build_sampler(options, cases, context, "train"), build_sampler(options, cases, context, "val")
