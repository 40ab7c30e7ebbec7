"""The pre-training ablation (the paper's claim): ssft from scratch vs from `video` vs from `video`+`mrft`.

The three runs differ only in their initial weights, taken from the local stage results where they exist,
else from the weights shipped with isrnet. They train for the same number of iterations: the video+mrft arm
turns the budget into an iteration count (the default `ssft` run serves as that arm when it was trained with
the same budget), and the other two arms repeat that count, so a busy machine cannot give one arm less
training than another. Arms that exist with that count are reused, so `isr_benchmark --ablation` after
`isr_train D ssft` trains only two more runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.runs import Run, RunRecord
from isrnet.training.checkpointing import load_checkpoint
from isrnet.training.initialisation import stage_weights
from isrnet.utilities.files import save_figure

LABELS = {"scratch": "ssft from scratch", "from_video": "ssft from video", "from_video_mrft": "ssft from video+mrft"}
# settings that may differ between arms; everything else in debug.json's config must match
ARM_SPECIFIC = ("init", "from_scratch", "tag", "iterations", "budget_minutes", "continue_training")


def _shared_settings(record: RunRecord) -> dict:
    return {key: value for key, value in record.config.items() if key not in ARM_SPECIFIC}


def _reference_arm(dataset: str, budget: float, mrft_start: Path) -> Run:
    """The video+mrft arm: the default `ssft` run when it started from these mrft weights with this budget."""
    default = Run(dataset, "ssft")
    record = default.record()  # None for an installed model (no debug.json): not an arm
    if default.finished and record and record.config.get("budget_minutes") == budget \
            and record.config.get("iterations") is None and record.initial_weights_path \
            and Path(record.initial_weights_path).resolve() == mrft_start.resolve():
        return default
    return Run(dataset, "ssft", "from_video_mrft")


def _train(dataset: str, tag: str, device: str, **options) -> None:
    from isrnet.training import TrainingOptions, run_training
    arm = TrainingOptions(tag=tag, device=device, **options)
    arm.command = arm.as_command(dataset, "ssft") + "  (run by isr_benchmark --ablation)"
    run_training(dataset, "ssft", arm)


def _check_reusable(run: Run, reference: RunRecord, iterations: int) -> None:
    record = run.record() or RunRecord(config={})
    if record.iterations_done != iterations:
        raise IsrnetError(f"{run.folder} has {record.iterations_done} iterations, the video+mrft arm {iterations}; "
                          f"delete {run.folder} to train it again")
    theirs = _shared_settings(record)
    differ = [key for key, value in _shared_settings(reference).items() if theirs.get(key) != value]
    if differ:
        raise IsrnetError(f"{run.folder} was trained with other settings than the video+mrft arm "
                          f"({', '.join(differ)}); delete it to train it again")


def ablation_runs(dataset: str, plans: Plans, budget: float, device: str) -> dict[str, Path]:
    """Label -> final checkpoint of the three arms (video+mrft first), training those that do not exist yet."""
    starts = {}
    for stage in ("video", "mrft"):
        found = stage_weights(stage, plans.stage_datasets[stage])
        if found is None:
            raise IsrnetError(f"the ablation needs {stage} weights: none shipped and no {stage} result; "
                              f"train it with isr_train {plans.stage_datasets[stage]} {stage}")
        starts[stage] = found[0]
    reference = _reference_arm(dataset, budget, starts["mrft"])
    if reference.finished:
        trained = reference.record().config.get("budget_minutes")
        if trained != budget:
            raise IsrnetError(f"{reference.folder} was trained with a {trained}-minute budget, not {budget:g}; "
                              f"give --budget-minutes {trained} or delete that folder")
        print(f"ablation: reusing {reference.folder}", flush=True)
    else:
        print(f"ablation: training {LABELS['from_video_mrft']} ({budget:g} min) -> {reference.folder}", flush=True)
        _train(dataset, "from_video_mrft", device, budget_minutes=budget, init=str(starts["mrft"]))
    record = reference.record()
    iterations = record.iterations_done
    runs = {"from_video_mrft": reference.final}
    for tag, start in (("from_video", {"init": str(starts["video"])}), ("scratch", {"from_scratch": True})):
        run = Run(dataset, "ssft", tag)
        if run.finished:
            _check_reusable(run, record, iterations)
            print(f"ablation: reusing {run.folder}", flush=True)
        else:
            print(f"ablation: training {LABELS[tag]} ({iterations} iterations, as the video+mrft arm) -> "
                  f"{run.folder}", flush=True)
            # the arms differ only in their start: the scratch arm too keeps the plan's (fine-tuning) schedule
            _train(dataset, tag, device, iterations=iterations, lr=record.config["lr"], **start)
        runs[tag] = run.final
    return {LABELS[tag]: runs[tag] for tag in ("scratch", "from_video", "from_video_mrft")}


def plot_ablation_curves(runs: dict[str, Path], path: Path, title: str) -> None:
    """Validation gain over cubic against ssft iterations, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, checkpoint in runs.items():
        validation = load_checkpoint(checkpoint)["history"]["validation"]
        gains = np.array([v["psnr"] - v["psnr_cubic"] for v in validation])
        axis.plot([v["iteration"] for v in validation], gains, "o-", label=label, markersize=3)
    axis.axhline(0, color="0.5", lw=0.8)
    axis.set(xlabel="ssft iteration", ylabel="validation PSNR gain over cubic (dB)", title=title)
    axis.legend()
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
