"""Which weights a stage starts from: -init, the previous stage's result, the shipped weights, or scratch.

The stage table (`isrnet/stages.py`) says which stage comes before which and what happens when nothing of
it exists. ssft: -init > mrft result of the plan's stage-2 dataset > shipped mrft weights > error naming the
options. mrft: -init > video result of the plan's stage-1 dataset > shipped video weights > scratch (with a
notice). video: -init > scratch. `--from-scratch` always starts from random weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isrnet.errors import IsrnetError
from isrnet.pretrained import describe_shipped, shipped_stage_of, shipped_weights
from isrnet.runs import finished_stage_run
from isrnet.stages import STAGES
from isrnet.training.checkpointing import check_compatible, load_checkpoint


@dataclass
class Initialisation:
    state_dict: dict | None
    description: str
    path: str | None = None


def stage_weights(stage: str, dataset_number: int) -> tuple[Path, str] | None:
    """(weights, description) a later stage builds on: the local result of `stage` on its dataset, else the
    weights shipped with isrnet, else None."""
    run = finished_stage_run(dataset_number, stage)
    if run is not None:
        return run.final, f"{stage} result of dataset {int(dataset_number):03d}"
    shipped = shipped_weights(stage)
    if shipped is not None:
        return shipped, describe_shipped(stage)
    return None


def _from_file(path: Path, network: dict, description: str) -> Initialisation:
    checkpoint = load_checkpoint(path)
    check_compatible(checkpoint, network, str(path))
    return Initialisation(checkpoint["state_dict"], description, str(path))


def resolve_initialisation(stage: str, network: dict, stage_datasets: dict, init: str | None,
                           from_scratch: bool) -> Initialisation:
    if from_scratch:
        return Initialisation(None, "from scratch (--from-scratch): random weights, output starts as cubic")
    if init:
        path = Path(init).resolve()  # recorded absolute: provenance finds it from any folder
        shipped = shipped_stage_of(path)
        return _from_file(path, network, f"-init {describe_shipped(shipped)}" if shipped else f"-init {path}")
    previous = STAGES[stage].previous
    if previous is None:
        return Initialisation(None, "from scratch (first stage)")
    found = stage_weights(previous, stage_datasets[previous])
    shipped_note = f"no shipped {previous} weights"
    if found is not None:
        weights, description = found
        if weights != shipped_weights(previous):
            return _from_file(weights, network, description)
        checkpoint = load_checkpoint(weights)
        try:
            check_compatible(checkpoint, network, description)
            return Initialisation(checkpoint["state_dict"], description, str(weights))
        except IsrnetError:  # a plan with a customised network: the shipped weights cannot seed it
            shipped_note = f"the shipped {previous} weights do not fit this plan's customised network"
    if STAGES[stage].without_previous == "scratch":
        return Initialisation(None, f"from scratch: no {previous} result of dataset {stage_datasets[previous]:03d} "
                                    f"and {shipped_note}")
    raise IsrnetError(f"nothing to initialise {stage} from: no {previous} result of dataset "
                      f"{stage_datasets[previous]:03d} and {shipped_note}. Give -init CHECKPOINT, "
                      f"train the previous stage (isr_train {stage_datasets[previous]} {previous}), "
                      f"or use --from-scratch")
