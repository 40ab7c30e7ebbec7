"""Which model a prediction uses: `-m MODEL_DIR|CHECKPOINT`, `-d DATASET [--stage S]`, or the shipped weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isrnet import paths
from isrnet.configuration import STAGES
from isrnet.errors import IsrnetError
from isrnet.pretrained import describe_shipped, shipped_weights
from isrnet.utilities.files import load_json

CHECKPOINT_PREFERENCE = ("checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth")


@dataclass
class ModelChoice:
    checkpoint: Path
    plans: dict | None
    description: str


def _checkpoint_in(folder: Path) -> Path | None:
    return next((folder / name for name in CHECKPOINT_PREFERENCE if (folder / name).is_file()), None)


def _plans_beside(checkpoint: Path) -> dict | None:
    path = checkpoint.parent / "plans.json"
    return load_json(path) if path.is_file() else None


def from_model_path(path: str | Path) -> ModelChoice:
    path = Path(path)
    if path.is_file():
        return ModelChoice(path, _plans_beside(path), str(path))
    if path.is_dir():
        checkpoint = _checkpoint_in(path)
        if checkpoint is None:
            raise IsrnetError(f"{path} holds no checkpoint ({', '.join(CHECKPOINT_PREFERENCE)})")
        return ModelChoice(checkpoint, _plans_beside(checkpoint), str(checkpoint))
    raise IsrnetError(f"-m {path}: no such model folder or checkpoint")


def from_dataset(dataset: str, stage: str | None = None) -> ModelChoice:
    """The dataset's untagged run of its latest pipeline stage (ssft, else mrft, else video), or `stage`.

    Tagged variants (e.g. `ssft__scratch`) and the benchmark's supervised upper bound are used only when named.
    """
    folder = paths.results_folder() / dataset
    if stage is not None and stage.split("__")[0] not in STAGES:
        raise IsrnetError(f"unknown stage '{stage}'; valid stages: {', '.join(STAGES)} (optionally __tag)")
    candidates = [stage] if stage is not None else list(reversed(STAGES))
    for run in candidates:
        checkpoint = _checkpoint_in(folder / run)
        if checkpoint is not None:
            return ModelChoice(checkpoint, _plans_beside(checkpoint), f"{dataset}/{run}")
    what = f"stage {stage}" if stage else "any stage"
    raise IsrnetError(f"dataset {dataset} has no trained model for {what} in {folder}; "
                      f"train one with: isr_train {dataset} ssft")


def shipped_model() -> ModelChoice:
    for stage in ("mrft", "video"):
        weights = shipped_weights(stage)
        if weights is not None:
            return ModelChoice(weights, None, describe_shipped(stage))
    raise IsrnetError("no model given and this installation ships no pre-trained weights; use -d DATASET "
                      "(after isr_train DATASET ssft) or -m MODEL_DIR")
