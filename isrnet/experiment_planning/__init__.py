"""Fingerprint extraction and planning (configuration as data in plans.json).

Entry points: `extract_fingerprint`, `plan_experiment`, `preprocess`, `plan_and_preprocess` (with `PlanOptions`).
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"extract_fingerprint": "fingerprint", "plan_experiment": "steps",
          "preprocess": "steps", "plan_and_preprocess": "steps",
          "PlanOptions": "steps", "describe_plan": "steps", "load_plans": "plans_file"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
