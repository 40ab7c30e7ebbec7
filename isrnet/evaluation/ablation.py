"""The pre-training ablation (the paper's claim): ssft from scratch vs from `video` vs from `video`+`mrft`.

The three runs differ only in their initial weights, taken from the local stage results where they exist,
else from the weights shipped with isrnet. They train for the same number of iterations: the video+mrft arm
turns the budget into an iteration count (the default `ssft` run serves as that arm when it was trained with
the same budget), and the other two arms repeat that count, so a busy machine cannot give one arm less
training than another. Arms that exist with that count are reused, so `isr_benchmark --ablation` after
`isr_train D ssft` trains only two more runs.
"""
from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.training.checkpointing import load_checkpoint
from isrnet.training.initialization import stage_weights
from isrnet.utilities.files import load_json, save_figure

LABELS = {"scratch": "ssft from scratch", "from_video": "ssft from video", "from_video_mrft": "ssft from video+mrft"}


def _debug(run: Path) -> dict:
    return load_json(run / "debug.json") if (run / "debug.json").is_file() else {}


def _finished(run: Path) -> bool:
    return (run / "checkpoint_final.pth").is_file()


# settings that may differ between arms; everything else in debug.json's config must match
ARM_SPECIFIC = ("init", "from_scratch", "tag", "iterations", "budget_minutes", "continue_training")


def _config(run: Path) -> dict:
    return _debug(run).get("config", {})


def _shared_settings(run: Path) -> dict:
    return {key: value for key, value in _config(run).items() if key not in ARM_SPECIFIC}


def _reference_arm(dataset: str, budget: float) -> Path:
    """The video+mrft arm: the default `ssft` run when it started from mrft weights with this budget."""
    results = paths.results_folder() / dataset
    debug = _debug(results / "ssft")  # empty for an installed model (no debug.json): not an arm
    config = debug.get("config", {})
    if _finished(results / "ssft") and config.get("budget_minutes") == budget and config.get("iterations") is None \
            and "mrft" in debug.get("initial_weights", ""):
        return results / "ssft"
    return results / "ssft__from_video_mrft"


def _train(dataset: str, tag: str, limit: list[str], device: str, extra: list[str]) -> None:
    from isrnet.cli.train import build_parser, train

    arguments = [dataset, "ssft", "--tag", tag, "-device", device, *limit, *extra]
    command = shlex.join(["isr_train", *arguments]) + "  (run by isr_benchmark --ablation)"
    train(build_parser().parse_args(arguments), time.time(), command)


def _check_reusable(run: Path, reference: Path, iterations: int) -> None:
    done = _debug(run).get("iterations_done")
    if done != iterations:
        raise IsrnetError(f"{run} has {done} iterations, the video+mrft arm {iterations}; "
                          f"delete {run} to train it again")
    theirs = _shared_settings(run)
    differ = [key for key, value in _shared_settings(reference).items() if theirs.get(key) != value]
    if differ:
        raise IsrnetError(f"{run} was trained with other settings than {reference.name} ({', '.join(differ)}); "
                          f"delete it to train it again")


def ablation_runs(dataset: str, plans: dict, budget: float, device: str) -> dict[str, Path]:
    """Label -> final checkpoint of the three arms (video+mrft first), training those that do not exist yet."""
    starts = {}
    for stage in ("video", "mrft"):
        found = stage_weights(stage, plans["stage_datasets"][stage])
        if found is None:
            raise IsrnetError(f"the ablation needs {stage} weights: none shipped and no {stage} result; "
                              f"train it with isr_train {plans['stage_datasets'][stage]} {stage}")
        starts[stage] = found[0]
    reference = _reference_arm(dataset, budget)
    if _finished(reference):
        trained = _config(reference).get("budget_minutes")
        if trained != budget:
            raise IsrnetError(f"{reference} was trained with a {trained}-minute budget, not {budget:g}; "
                              f"give --budget-minutes {trained} or delete that folder")
        print(f"ablation: reusing {reference}", flush=True)
    else:
        print(f"ablation: training {LABELS['from_video_mrft']} ({budget:g} min) -> {reference}", flush=True)
        _train(dataset, "from_video_mrft", ["--budget-minutes", str(budget)], device, ["-init", str(starts["mrft"])])
    iterations = _debug(reference)["iterations_done"]
    runs = {"from_video_mrft": reference / "checkpoint_final.pth"}
    for tag, extra in (("from_video", ["-init", str(starts["video"])]), ("scratch", ["--from-scratch"])):
        run = paths.results_folder() / dataset / f"ssft__{tag}"
        if _finished(run):
            _check_reusable(run, reference, iterations)
            print(f"ablation: reusing {run}", flush=True)
        else:
            print(f"ablation: training {LABELS[tag]} ({iterations} iterations, as the video+mrft arm) -> {run}",
                  flush=True)
            _train(dataset, tag, ["--iterations", str(iterations)], device, extra)
        runs[tag] = run / "checkpoint_final.pth"
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
