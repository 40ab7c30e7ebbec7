"""A training run: `$isrnet_results/DatasetXXX_Name/<stage>[__<tag>]/`, parsed and located in one place.

Initialisation, prediction (`-d`), the benchmark, the ablation and model sharing all find runs here:

    run = Run.parse("Dataset001_DemoBrain", "ssft__scratch")   # Run(dataset, stage='ssft', tag='scratch')
    run.checkpoint()      # checkpoint_final.pth, else _best, else _latest (None when untrained)
    run.record()          # debug.json as a typed RunRecord (None for installed models)
    latest_run(dataset)   # the untagged run of the latest pipeline stage (what `isr_predict -d` uses)
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isrnet import paths
from isrnet.datasets import DATASET_PATTERN
from isrnet.errors import IsrnetError
from isrnet.stages import PIPELINE, STAGES
from isrnet.utilities.files import load_json, save_json

if TYPE_CHECKING:
    from isrnet.plans import Plans

RUN_NAME = re.compile(r"(?P<stage>[a-z]+)(?:__(?P<tag>\w+))?")
CHECKPOINT_PREFERENCE = ("final", "best", "latest")
DEBUG_FILE = "debug.json"


@dataclass
class RunRecord:
    """debug.json: the resolved training configuration, where the weights started, how far it got, provenance."""
    config: dict
    initial_weights: str = ""
    initial_weights_path: str | None = None
    iterations: int | None = None  # the planned total
    iterations_done: int | None = None
    world_size: int = 1
    seconds_this_command: float | None = None
    budget_estimates: list = field(default_factory=list)  # [iteration, total, s/iteration] of each estimate
    # {'kept': 'start' | 'fine-tuned' | 'halfway', 'reason', 'rule', 'start_psnr', 'final_psnr',
    #  'hidden_slices' (the witness, with 'halfway' where the halfway weights were scored)}
    guard: dict | None = None
    threads: dict | None = None  # {'chosen': n, 'seconds_per_iteration': {n: s}} of a budgeted CPU run
    started: str | None = None
    command: str | None = None
    git_commit: str | None = None
    machine: dict | None = None
    earlier_commands: list = field(default_factory=list)  # earlier commands of a run continued with --c
    isrnet_version: str | None = None
    torch_version: str | None = None

    @property
    def kept_start(self) -> bool:
        """Whether the never-worse guard ended the run with its starting weights."""
        return (self.guard or {}).get("kept") == "start"

    @property
    def kept_halfway(self) -> bool:
        """Whether the guard ended the run with the weights halfway between its start and its own (guard.py)."""
        return (self.guard or {}).get("kept") == "halfway"

    @property
    def cases_keeping_start(self) -> dict[str, float]:
        """{case: its own witness lead (dB)} of the training cases predicted with the starting weights although the
        run kept its fine-tuned (or halfway) ones: their own hidden real slices scored those below the start."""
        if (self.guard or {}).get("kept") not in ("fine-tuned", "halfway"):
            return {}
        verdicts = (self.guard.get("hidden_slices") or {}).get("per_case") or {}
        return {case: float(v["lead_db"]) for case, v in verdicts.items() if v.get("says") == "start"}

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        content = load_json(path)
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in content.items() if key in known})

    def save(self, path: Path) -> None:
        save_json(asdict(self), path)

    def continued(self) -> dict[str, Any]:
        """This command's share, as a later `--c` command records it in `earlier_commands`."""
        return {"command": self.command, "started": self.started, "seconds_this_command": self.seconds_this_command,
                "git_commit": self.git_commit}


@dataclass(frozen=True)
class Run:
    dataset: str  # DatasetXXX_Name
    stage: str
    tag: str | None = None

    @classmethod
    def parse(cls, dataset: str, name: str, pipeline_only: bool = False) -> "Run":
        """'ssft' or 'ssft__scratch' -> Run; an unknown stage is an error naming the valid ones.
        With `pipeline_only`, runs of stages users do not train (the upper bound) are refused too."""
        match = RUN_NAME.fullmatch(name)
        if not match or match["stage"] not in STAGES or (pipeline_only and not STAGES[match["stage"]].pipeline):
            raise IsrnetError(f"unknown stage in run name '{name}'; valid stages: {', '.join(PIPELINE)} "
                              f"(optionally __tag, e.g. ssft__scratch)")
        return cls(dataset, match["stage"], match["tag"])

    @property
    def name(self) -> str:
        return self.stage if not self.tag else f"{self.stage}__{self.tag}"

    @property
    def folder(self) -> Path:
        return paths.results_folder() / self.dataset / self.name

    def checkpoint(self, which: tuple[str, ...] = CHECKPOINT_PREFERENCE) -> Path | None:
        """The first of checkpoint_final/best/latest.pth that exists (or of `which`)."""
        return checkpoint_in(self.folder, which)

    @property
    def final(self) -> Path:
        return self.folder / "checkpoint_final.pth"

    @property
    def finished(self) -> bool:
        return self.final.is_file()

    def record(self) -> RunRecord | None:
        """debug.json, or None (an installed model has provenance.json instead)."""
        path = self.folder / DEBUG_FILE
        return RunRecord.load(path) if path.is_file() else None

    def plans(self) -> "Plans | None":
        """plans.json beside the checkpoints (what the run was trained with), migrated from an earlier format."""
        from isrnet.experiment_planning.plans_file import plans_beside
        return plans_beside(self.folder)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.name}"


def checkpoint_in(folder: Path, which: tuple[str, ...] = CHECKPOINT_PREFERENCE) -> Path | None:
    """The first of `folder`/checkpoint_final/best/latest.pth that exists (any folder: runs, installed models)."""
    return next((folder / f"checkpoint_{name}.pth" for name in which if (folder / f"checkpoint_{name}.pth").is_file()),
                None)


def datasets_with_number(number: int) -> list[str]:
    """Result folders of the dataset with this ID (normally one)."""
    root = paths.results_folder()
    if not root.is_dir():
        return []
    return [folder.name for folder in sorted(root.iterdir())
            if (match := DATASET_PATTERN.match(folder.name)) and int(match.group(1)) == int(number)]


def runs_of(dataset: str) -> list[Run]:
    """Every run folder of a dataset (pipeline stages first, in training order; then the rest)."""
    folder = paths.results_folder() / dataset
    found = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = RUN_NAME.fullmatch(entry.name)
        if entry.is_dir() and match and match["stage"] in STAGES:
            found.append(Run(dataset, match["stage"], match["tag"]))
    order = {name: index for index, name in enumerate(STAGES)}
    return sorted(found, key=lambda run: (order[run.stage], run.tag or ""))


def finished_stage_run(dataset_number: int, stage: str) -> Run | None:
    """The finished untagged run of `stage` on the dataset with this ID, if any."""
    for dataset in datasets_with_number(dataset_number):
        run = Run(dataset, stage)
        if run.finished:
            return run
    return None


def latest_run(dataset: str) -> Run | None:
    """The untagged run of the latest pipeline stage that has a checkpoint (ssft, else mrft, else video)."""
    return next((Run(dataset, stage) for stage in reversed(PIPELINE) if Run(dataset, stage).checkpoint()), None)
