"""Training: one trainer for every stage (a stage differs only in its sampler).

Entry points: `run_training(dataset, stage, TrainingOptions(...)) -> Run`; `adapt_to_case(start, case, options)`
(fine-tuning on one case, what isr_predict --adapt-minutes runs).
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_training": "run", "TrainingOptions": "run", "train_run": "run", "adapt_to_case": "adaptation",
          "AdaptationOptions": "adaptation", "AdaptationCase": "adaptation", "StartingPoint": "adaptation"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
