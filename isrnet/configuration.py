"""Defaults that are not dataset-dependent: the network every stage shares, stage datasets, budgets.

The planner copies these into plans.json, where every value can be overridden and is recorded.
"""
from __future__ import annotations

STAGES = ("video", "mrft", "ssft")

# The network is the same for every stage and dataset so that weights move video -> mrft -> ssft.
DEFAULT_NETWORK = {
    "name": "SliceSynthNet",
    "kwargs": {"context": 4, "encoder_channels": 24, "encoder_blocks": 2, "fusion_channels": 48,
               "fusion_blocks": 2, "mixer_channels": 32, "decoder_channels": 24},
}

DEFAULT_STAGE_DATASETS = {"video": 900, "mrft": 901}

# Wall-clock budgets (minutes) for a whole `isr_train` command, per stage and device.
DEFAULT_BUDGET_MINUTES = {"cpu": {"video": 30.0, "mrft": 30.0, "ssft": 8.0},
                          "cuda": {"video": 60.0, "mrft": 30.0, "ssft": 8.0}}

# Memory budget (bytes) for one training batch's feature maps, and the largest in-plane patch.
MEMORY_BUDGET_BYTES = {"cpu": 512 * 2**20, "cuda": 6 * 2**30}
MAX_PATCH = {"cpu": 96, "cuda": 192}
MAX_BATCH = {"cpu": 12, "cuda": 48}
MIN_PATCH = 24

# A hr_mr volume may differ by this ratio between its finest and coarsest spacing.
ISOTROPY_TOLERANCE = 1.1
