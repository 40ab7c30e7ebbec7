"""The paper's claim on a dataset with references: ssft from scratch vs from `video` vs from `video`+`mrft`.

Trains the three `ssft` variants with the same budget (skipping any that already exist), then plots their
validation learning curves in one figure and evaluates each (and `mrft` alone) against referenceTr/ on the
synthesised slices. Usage:
    python benchmarks/pretraining_ablation.py -d 1 [--budget-minutes 8]
Writes $isrnet_results/DatasetXXX/benchmark/ablation.csv and ablation_curves.png.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from isrnet import paths
from isrnet.datasets import resolve_dataset
from isrnet.evaluation.benchmark import benchmark, load_cases, summary_table
from isrnet.experiment_planning.plans_file import load_plans
from isrnet.training.initialization import stage_result


def train(dataset: str, tag: str | None, budget: float, init: list[str]) -> Path:
    """The ssft run `ssft__tag` (tag None: the default `ssft` run, which starts from the mrft result)."""
    run = paths.results_folder() / dataset / (f"ssft__{tag}" if tag else "ssft")
    if not (run / "checkpoint_final.pth").is_file():
        command = [sys.executable, "-c", "from isrnet.cli.train import main; main()", dataset, "ssft",
                   *(["--tag", tag] if tag else []), "--budget-minutes", str(budget), *init]
        print("running:", " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True)
    return run / "checkpoint_final.pth"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", dest="dataset", default="1")
    parser.add_argument("--budget-minutes", type=float, default=8.0)
    args = parser.parse_args()
    dataset = resolve_dataset(args.dataset)
    plans = load_plans(dataset)
    video = stage_result(plans["stage_datasets"]["video"], "video")
    mrft = stage_result(plans["stage_datasets"]["mrft"], "mrft")
    if video is None or mrft is None:
        sys.exit("train the pre-training stages first: isr_train 900 video ; isr_train 901 mrft")
    runs = {"ssft from scratch": train(dataset, "scratch", args.budget_minutes, ["--from-scratch"]),
            "ssft from video": train(dataset, "from_video", args.budget_minutes, ["-init", str(video)]),
            "ssft from video+mrft": train(dataset, None, args.budget_minutes, [])}
    models = {"mrft alone (no ssft)": mrft, **runs}
    table, _ = benchmark(load_cases(dataset, plans, None), models, classic=("cubic B-spline",))
    summary = summary_table(table)
    output = paths.results_folder() / dataset / "benchmark"
    output.mkdir(parents=True, exist_ok=True)
    summary.to_csv(output / "ablation.csv", float_format="%.4f")
    print(summary[["psnr_synth", "gain_vs_cubic_dB", "ssim_synth"]].to_string(float_format=lambda v: f"{v:.3f}"))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, checkpoint in runs.items():
        validation = torch.load(checkpoint, map_location="cpu", weights_only=False)["history"]["validation"]
        axis.plot([v["iteration"] for v in validation], [v["psnr"] - v["psnr_cubic"] for v in validation], "o-",
                  label=label, markersize=3)
    axis.axhline(0, color="0.5", lw=0.8)
    axis.set(xlabel="ssft iteration", ylabel="validation PSNR gain over cubic (dB)",
             title=f"{dataset}: pre-training ablation ({args.budget_minutes:g} min ssft each)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(output / "ablation_curves.png", dpi=100)
    print(f"written: {output / 'ablation.csv'}, {output / 'ablation_curves.png'}")


if __name__ == "__main__":
    main()
