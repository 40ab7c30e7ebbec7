"""The benchmark entry point: `run_benchmark(dataset, options) -> BenchmarkResult` (what `isr_benchmark` calls).

    from isrnet.benchmarking import BenchmarkOptions, run_benchmark
    result = run_benchmark("001", BenchmarkOptions(upper_bound=False, classic=("cubic",)))
    print(result.summary)        # mean PSNR/SSIM per method, gain over cubic B-spline

Writes to $isrnet_results/DatasetXXX/benchmark/: benchmark.csv (per case), benchmark_summary.csv/.md,
qc_<case>.png, results.md; with the ablation also ablation.csv and ablation_curves.png.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from isrnet import paths
from isrnet.datasets import resolve_dataset
from isrnet.benchmarking.ablation import ablation_runs, plot_ablation_curves
from isrnet.evaluation.baselines import SHORT_NAMES
from isrnet.benchmarking.benchmark import (BenchmarkModel, benchmark, load_cases, markdown_table, profile_table,
                                         profile_text, summary_table, terminal_table, trained_models)
from isrnet.evaluation.qc_figure import qc_figure
from isrnet.benchmarking.results_page import write_results_page
from isrnet.benchmarking.upper_bound import train_upper_bound, upper_bound_run
from isrnet.experiment_planning.plans_file import load_plans
from isrnet.training.checkpointing import load_checkpoint
from isrnet.utilities.device import resolve_device
from isrnet.utilities.files import atomic_write_text


@dataclass
class BenchmarkOptions:
    factor: float | None = None  # simulate the input from the references at this factor (else imagesTr/)
    upper_bound: bool = True  # train (once) and report the supervised upper bound
    retrain_upper_bound: bool = False
    ablation: bool = False  # ssft from scratch / video / video+mrft
    budget_minutes: float | None = None  # of the upper bound and the ablation arms (default: the plan's)
    classic: tuple[str, ...] = tuple(SHORT_NAMES)  # short names; cubic is always included
    device: str = "cpu"


@dataclass
class BenchmarkResult:
    table: pd.DataFrame  # one row per case and method
    summary: pd.DataFrame  # mean per method, with the gain over cubic B-spline
    models: list[BenchmarkModel]
    folder: Path  # where the CSVs, figures and results.md are
    page: Path  # results.md
    text: str  # the terminal table (and the ablation's, when run)


def _qc_models(models: list[BenchmarkModel]) -> list[str]:
    """Labels shown in the QC figure: the pre-trained weights alone and the dataset's default ssft run."""
    pretrained = next((m.label for m in models if m.role == "mrft"), None)
    fine_tuned = next((m.label for m in models if m.run and m.run.stage == "ssft" and not m.run.tag), None)
    return [label for label in dict.fromkeys((pretrained, fine_tuned)) if label]


def run_benchmark(dataset: str | int, options: BenchmarkOptions | None = None) -> BenchmarkResult:
    options = options or BenchmarkOptions()
    start = time.time()
    device = resolve_device(options.device)
    dataset = resolve_dataset(dataset)
    plans = load_plans(dataset)
    cases = load_cases(dataset, plans, options.factor)
    budget = options.budget_minutes or plans.training.budget_minutes
    ablation = ablation_runs(dataset, plans, budget, device) if options.ablation else {}
    bound = upper_bound_run(dataset)
    if options.upper_bound and (options.retrain_upper_bound or not bound.finished):
        shutil.rmtree(bound.folder, ignore_errors=True)
        train_upper_bound(dataset, plans, cases, budget, device)
    models = [m for m in trained_models(dataset, plans) if options.upper_bound or m.role != "upper_bound"]
    wanted = set(options.classic) | {"cubic"}
    classic = tuple(SHORT_NAMES[name] for name in SHORT_NAMES if name in wanted)
    table, outputs = benchmark(cases, models, device, classic=classic)
    output = paths.results_folder() / dataset / "benchmark"
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table.to_csv(index=False, float_format="%.4f"), output / "benchmark.csv")
    summary = summary_table(table)
    atomic_write_text(summary.to_csv(float_format="%.4f"), output / "benchmark_summary.csv")
    atomic_write_text(markdown_table(summary), output / "benchmark_summary.md")
    profiles = profile_table(dataset, cases)
    atomic_write_text(profiles.to_csv(index=False, float_format="%.4f"), output / "slice_profiles.csv")
    text = terminal_table(summary, len(cases)) + "\n" + profile_text(profiles)

    figures = []
    for case in cases:
        panels = {"input (nearest)": outputs[case.name]["nearest"]} if "nearest" in outputs[case.name] else {}
        panels["cubic B-spline"] = outputs[case.name]["cubic B-spline"]
        for label in _qc_models(models):
            panels[label.replace("isrnet ", "isrnet\n").replace(" (", "\n(")] = outputs[case.name][label]
        figures.append(output / f"qc_{case.name}.png")
        qc_figure(case.reference, panels, case.slice_axis, figures[-1], f"{dataset} {case.name} x{case.factor:g}")

    ablation_table, curves, ablation_note = None, None, ""
    if ablation:
        by_checkpoint = {str(m.checkpoint): m.label for m in models}
        pretrained = next((m.label for m in models if m.role == "mrft"), None)
        rows = {"(mrft alone, no ssft)": pretrained, **{arm: by_checkpoint[str(path)] for arm, path in ablation.items()}}
        ablation_table = summary.loc[[label for label in rows.values() if label]].copy()
        ablation_table.index = [arm for arm, label in rows.items() if label]
        atomic_write_text(ablation_table.to_csv(float_format="%.4f"), output / "ablation.csv")
        curves = output / "ablation_curves.png"
        iterations = load_checkpoint(ablation["ssft from video+mrft"])["iteration"]
        ablation_note = f"{iterations} ssft iterations each; the video+mrft arm's budget: {budget:g} min"
        plot_ablation_curves(ablation, curves, f"{dataset}: pre-training ablation ({iterations} ssft iterations each)")
        text += ("\n\npre-training ablation (final PSNR against the reference):\n" + ablation_table[
            ["psnr_synth", "gain_vs_cubic_dB", "ssim_synth"]].to_string(float_format="{:.3f}".format))
    input_note = (f"thick slices simulated from the references at x{options.factor:g}" if options.factor
                  else "the dataset's own imagesTr (thick slices)")
    page = write_results_page(output, dataset, [c.name for c in cases], input_note, summary, models, figures,
                              ablation_table, curves, ablation_note, device, profile_text(profiles))
    text += f"\nwritten to {output} (open {page.name} for the table with figures) in {time.time() - start:.0f} s"
    return BenchmarkResult(table, summary, models, output, page, text)
