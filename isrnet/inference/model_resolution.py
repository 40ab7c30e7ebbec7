"""Which model a prediction uses: `-m MODEL_DIR|CHECKPOINT`, `-d DATASET [--stage S]`, or the shipped weights.

A `Model` is a checkpoint plus the plans it was trained with (plans.json beside it in a run folder; none for the
shipped weights): the predictor takes per-case settings and the normalisation from those plans.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isrnet import paths
from isrnet.datasets import resolve_dataset
from isrnet.errors import IsrnetError
from isrnet.pretrained import SHIPPED_STAGES, describe_shipped, shipped_weights
from isrnet.runs import CHECKPOINT_PREFERENCE, Run, checkpoint_in, latest_run
from isrnet.plans import Plans
from isrnet.experiment_planning.plans_file import plans_beside


@dataclass
class Model:
    checkpoint: Path
    plans: Plans | None
    description: str


def _plans_beside(checkpoint: Path) -> Plans | None:
    return plans_beside(checkpoint.parent)


def from_model_path(path: str | Path) -> Model:
    """A checkpoint file, or a run folder (its final, else best, else latest checkpoint)."""
    path = Path(path)
    if path.is_file():
        return Model(path, _plans_beside(path), str(path))
    if path.is_dir():
        checkpoint = checkpoint_in(path)
        if checkpoint is None:
            raise IsrnetError(f"{path} holds no checkpoint "
                              f"({', '.join(f'checkpoint_{n}.pth' for n in CHECKPOINT_PREFERENCE)})")
        return Model(checkpoint, _plans_beside(checkpoint), str(checkpoint))
    raise IsrnetError(f"-m {path}: no such model folder or checkpoint")


def from_run(run: Run) -> Model:
    checkpoint = run.checkpoint()
    if checkpoint is None:
        raise IsrnetError(f"dataset {run.dataset} has no trained model for stage {run.name} in {run.folder}; "
                          f"train one with: isr_train {run.dataset} {run.stage}")
    return Model(checkpoint, run.plans(), str(run))


def from_dataset(dataset: str, stage: str | None = None) -> Model:
    """The dataset's untagged run of its latest pipeline stage (ssft, else mrft, else video), or `stage`.

    Tagged variants (e.g. `ssft__scratch`) and the benchmark's supervised upper bound are used only when named.
    """
    if stage is not None:
        return from_run(Run.parse(dataset, stage, pipeline_only=True))
    run = latest_run(dataset)
    if run is None:
        raise IsrnetError(f"dataset {dataset} has no trained model for any stage in "
                          f"{paths.results_folder() / dataset}; train one with: isr_train {dataset} ssft")
    return from_run(run)


def shipped_model() -> Model:
    for stage in SHIPPED_STAGES:
        weights = shipped_weights(stage)
        if weights is not None:
            return Model(weights, None, describe_shipped(stage))
    raise IsrnetError("no model given and this installation ships no pre-trained weights; use -d DATASET "
                      "(after isr_train DATASET ssft) or -m MODEL_DIR")


def as_model(model: "Model | str | Path | None") -> Model:
    """A Model as given, a run folder or checkpoint path, or (None) the shipped weights."""
    if isinstance(model, Model):
        return model
    return shipped_model() if model is None else from_model_path(model)


def resolve_model(dataset: str | int | None = None, stage: str | None = None,
                  path: str | Path | None = None) -> Model:
    """-m PATH, -d DATASET [--stage S], or (neither) the shipped weights."""
    if stage and dataset is None:
        raise IsrnetError("--stage goes with -d DATASET")
    if path is not None and dataset is not None:
        raise IsrnetError("-m and -d exclude each other")
    if path is not None:
        return from_model_path(path)
    if dataset is not None:
        return from_dataset(resolve_dataset(dataset), stage)
    return shipped_model()
