"""Defaults that are not dataset-dependent: the network every stage shares, stage datasets, memory budgets.
(What each stage is, with its sampler options and time budgets, is the stage table in `isrnet/stages.py`.)

The planner copies these into plans.json, where every value can be overridden and is recorded.
"""
from __future__ import annotations

# The network is the same for every stage and dataset so that weights move video -> mrft -> ssft.
DEFAULT_NETWORK = {
    "name": "SliceSynthNet",
    "kwargs": {"context": 4, "encoder_channels": 24, "encoder_blocks": 2, "fusion_channels": 48,
               "fusion_blocks": 2, "mixer_channels": 32, "decoder_channels": 24},
}

DEFAULT_STAGE_DATASETS = {"video": 900, "mrft": 901}

# Memory budget (bytes) for one training batch's feature maps, and the largest in-plane patch.
MEMORY_BUDGET_BYTES = {"cpu": 512 * 2**20, "cuda": 6 * 2**30}
MAX_PATCH = {"cpu": 96, "cuda": 192}
MAX_BATCH = {"cpu": 12, "cuda": 48}
MIN_PATCH = 24

# Training losses by name (plans key training.loss): l1 (the default, sharper for image restoration) and l2 (mean
# squared error, what PSNR measures). Implemented in training/losses.py; named here so planning can check them.
LOSS_NAMES = ("l1", "l2")

# The never-worse guard's rules by name (plans key training.guard): which signals must agree before a run that
# started from weights keeps its own. Implemented in training/guard.py; named here so planning can check them.
GUARD_RULES = ("validation", "witness", "validation+witness")
DEFAULT_GUARD = "witness"
# How far (in standard errors of its per-slice differences; plans key training.witness_margin) the witness must see
# the fine-tuned weights ahead of the start: one-sided 95 %, so that a few hidden slices cannot keep worse weights by
# chance; 0 keeps any lead (documentation/training.md measures both).
DEFAULT_WITNESS_MARGIN = 1.645
# When the witness turns the fine-tuned weights down, try the weights halfway between the start and them (their
# mean; plans key training.halfway_weights) and keep those if their own lead clears its own margin (training/guard.py).
DEFAULT_HALFWAY_WEIGHTS = True
