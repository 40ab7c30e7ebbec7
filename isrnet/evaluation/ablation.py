"""The pre-training ablation (the paper's claim): ssft from scratch vs from `video` vs from `video`+`mrft`.

The three runs get the same budget and differ only in their initial weights, taken from the local stage
results where they exist, else from the weights shipped with isrnet. Existing runs are reused when their
budget matches (the default `ssft` run counts as the video+mrft arm), so `isr_benchmark --ablation` after
`isr_train D ssft` trains only two more runs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.training.checkpointing import load_checkpoint
from isrnet.training.initialization import stage_weights
from isrnet.utilities.files import load_json

LABELS = {"scratch": "ssft from scratch", "from_video": "ssft from video", "from_video_mrft": "ssft from video+mrft"}


def _budget_of(run: Path) -> float | None:
    debug = run / "debug.json"
    return load_json(debug)["config"].get("budget_minutes") if debug.is_file() else None


def _arm_run(dataset: str, tag: str, budget: float) -> Path:
    """The run folder of one arm; the untagged `ssft` run serves as video+mrft when it fits."""
    results = paths.results_folder() / dataset
    default = results / "ssft"
    if tag == "from_video_mrft" and (default / "checkpoint_final.pth").is_file() and _budget_of(default) == budget \
            and "mrft" in load_json(default / "debug.json").get("initial_weights", ""):
        return default
    return results / f"ssft__{tag}"


def ablation_runs(dataset: str, plans: dict, budget: float, device: str) -> dict[str, Path]:
    """Label -> final checkpoint of the three arms, training those that do not exist yet."""
    from isrnet.cli.train import build_parser, train

    starts = {}
    for stage in ("video", "mrft"):
        found = stage_weights(stage, plans["stage_datasets"][stage])
        if found is None:
            raise IsrnetError(f"the ablation needs {stage} weights: none shipped and no {stage} result; "
                              f"train it with isr_train {plans['stage_datasets'][stage]} {stage}")
        starts[stage] = found[0]
    arguments = {"scratch": ["--from-scratch"], "from_video": ["-init", str(starts["video"])],
                 "from_video_mrft": ["-init", str(starts["mrft"])]}
    runs = {}
    for tag, extra in arguments.items():
        run = _arm_run(dataset, tag, budget)
        if (run / "checkpoint_final.pth").is_file():
            if _budget_of(run) != budget:
                raise IsrnetError(f"{run} was trained with a {_budget_of(run):g}-minute budget, not {budget:g}; "
                                  f"give --budget-minutes {_budget_of(run):g} or delete that folder")
            print(f"ablation: reusing {run}", flush=True)
        else:
            print(f"ablation: training {LABELS[tag]} ({budget:g} min) -> {run}", flush=True)
            args = build_parser().parse_args([dataset, "ssft", "--tag", tag, "--budget-minutes", str(budget),
                                              "-device", device, *extra])
            train(args, time.time())
        runs[LABELS[tag]] = run / "checkpoint_final.pth"
    return runs


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
    temporary = path.with_name(f".{path.name}.partial.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
