"""Where plans.json lives, and loading it with an error that names the command to run."""
from __future__ import annotations

from pathlib import Path

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.utilities.files import load_json

PLANS_FILE = "plans.json"


def plans_path(dataset: str) -> Path:
    return paths.preprocessed_folder() / dataset / PLANS_FILE


def load_plans(dataset: str) -> dict:
    path = plans_path(dataset)
    if not path.is_file():
        raise IsrnetError(f"dataset {dataset} has no plans ({path}); run: isr_plan_and_preprocess -d {dataset}")
    return load_json(path)
