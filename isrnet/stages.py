"""The stage table: what each training stage is, in one place. Adding a stage touches this table only
(plus a sampler under `training/samplers/` if it needs a new kind of pairs).

    stage("ssft").previous        -> 'mrft'  (the stage whose weights it starts from)
    stage_for_kind("hr_mr").name  -> 'mrft'  (what the planner plans a dataset of that kind for)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from isrnet.errors import IsrnetError


class DatasetKind(str, Enum):
    """What a raw dataset holds (dataset.json "kind"); each pipeline stage trains on one kind."""
    TARGET = "target"  # the user's anisotropic scans: what is super-resolved
    HR_MR = "hr_mr"  # isotropic high-resolution MR: thick slices are simulated along every axis
    VIDEO = "video"  # clips: frames play the slices

    def __str__(self) -> str:
        return self.value


SCRATCH_LR = 1e-3  # peak learning rate of a stage that trains from random weights (no warm-up)


@dataclass(frozen=True)
class Stage:
    name: str
    dataset_kind: DatasetKind  # the kind of raw dataset it trains on
    previous: str | None  # the stage whose result (or shipped weights) it starts from; None: random weights
    without_previous: str  # when nothing of `previous` exists: 'scratch' (with a notice) or 'error'
    sampler_defaults: dict = field(default_factory=dict)  # plans["sampler"]; "name" picks the sampler
    budget_minutes: dict = field(default_factory=dict)  # default wall-clock budget per device
    factor_range_key: str | None = None  # sampler key holding the trained factor range; None: the plan's cases
    pipeline: bool = True  # False: the benchmark's supervised upper bound (not something users train)
    lr: float = SCRATCH_LR  # plans training.lr: Adam's peak learning rate
    warmup_fraction: float = 0.0  # plans training.warmup_fraction: linear warm-up over this share of the run


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("video", DatasetKind.VIDEO, None, "scratch",
          {"name": "video", "frame_step_range": [2, 8], "uneven_steps": True, "targets_per_sample": 3},
          {"cpu": 30.0, "cuda": 60.0}, "frame_step_range"),
    # contrast_randomisation: the chance per sample of a random MR contrast, bias field and noise (see
    # training/samplers/contrast.py), so the T1 material teaches weights for any contrast; 0 = T1 plus gamma only,
    # which the shipped mrft.pth was trained with (what it gains: documentation/training.md). acquisition_physics: the
    # chance per sample of a pair acquired as a scanner would (training/samplers/acquisition_physics.py); 0 = the
    # idealised slices the shipped mrft.pth was trained with. tissue_contrast: the chance per sample of a contrast
    # synthesised from the volume's tissue classes (training/samplers/tissue_contrast.py). curve_after_acquisition:
    # the chance per sample of a random intensity curve applied to the acquired pair (training/samplers/mrft.py)
    Stage("mrft", DatasetKind.HR_MR, "video", "scratch",
          {"name": "mrft", "factor_range": [2.0, 8.0], "thickness_ratio_range": [0.0, 1.5],
           "profiles": ["gaussian", "rect"], "targets_per_sample": 3, "intensity_augmentation": True,
           "contrast_randomisation": 0.0, "acquisition_physics": 0.0,
           "tissue_contrast": 0.0, "curve_after_acquisition": 0.0},
          {"cpu": 30.0, "cuda": 30.0}, "factor_range"),
    # ssft starts from good weights, so it fine-tunes at a lower rate with a warm-up: at mrft's rate without one,
    # Adam's first steps move them away from the start (documentation/training.md). noise_matching: simulated
    # slices get the acquisition's noise level (acquisition/noise.py). wide_gap_share: the share of training pairs at
    # twice the slice spacing, the gap the guard's hidden-slice witness predicts. thickness_jitter: how far (a
    # factor up to 1 + j) the simulated thickness strays from the plan's, which the network is still told
    # (training/samplers/ssft.py). inplane_axis: which in-plane axis plays the slice axis ('either' equally, or
    # 'matched': mostly the one whose spectrum, blurred with the plan's profile, looks like the slice axis)
    Stage("ssft", DatasetKind.TARGET, "mrft", "error",
          {"name": "ssft", "pairs": "inplane", "targets_per_sample": 3, "validation_fraction": 0.1,
           "noise_matching": True, "wide_gap_share": 0.25,
           "thickness_jitter": 0.0, "inplane_axis": "either"},
          {"cpu": 8.0, "cuda": 8.0}, lr=2e-4, warmup_fraction=0.1),
    Stage("supervised", DatasetKind.TARGET, "mrft", "scratch", {"name": "mrft"}, {"cpu": 8.0, "cuda": 8.0},
          "factor_range", pipeline=False),
)}

PIPELINE: tuple[str, ...] = tuple(name for name, s in STAGES.items() if s.pipeline)  # in training order


def stage(name: str) -> Stage:
    """The stage called `name`; an unknown name is an error listing the stages users train."""
    if name not in STAGES or not STAGES[name].pipeline:
        raise IsrnetError(f"unknown stage '{name}'; valid stages: {', '.join(PIPELINE)}")
    return STAGES[name]


def stage_for_kind(kind: DatasetKind | str) -> Stage:
    """The pipeline stage that trains on datasets of `kind`."""
    return next(s for s in STAGES.values() if s.pipeline and s.dataset_kind == kind)
