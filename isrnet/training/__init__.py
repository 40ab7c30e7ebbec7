"""Training: one trainer for every stage (a stage differs only in its sampler).

Entry point: `run_training(dataset, stage, TrainingOptions(...)) -> Run`.
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_training": "run", "TrainingOptions": "run", "train_run": "run"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
