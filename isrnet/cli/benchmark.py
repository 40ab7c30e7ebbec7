"""`isr_benchmark -d D`: classic interpolation vs isrnet (every trained stage) vs a supervised upper bound."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import positive_float, run_cli
from isrnet.evaluation.baselines import SHORT_NAMES

EPILOG = """examples:
  isr_benchmark -d 001                          everything trained so far + the supervised upper bound
  isr_benchmark -d 001 --no-upper-bound --classic nearest linear cubic   quick (what quickstart.sh runs)
  isr_benchmark -d 001 --ablation --budget-minutes 6   + ssft from scratch / video / video+mrft (6 min each)
  isr_benchmark -d 002 --factor 4              simulate x4 thick slices from the references instead
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isr_benchmark", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__ + " Needs a dataset with referenceTr/. Prints a table (PSNR/SSIM over synthesised "
        "slices, seconds per volume) and writes to $isrnet_results/DatasetXXX/benchmark/: benchmark.csv (per "
        "case), benchmark_summary.csv/.md, qc_<case>.png and results.md (a page with table, model provenance, "
        "figures; with --ablation also ablation.csv and ablation_curves.png).")
    parser.add_argument("-d", dest="dataset", required=True, help="dataset with referenceTr/ (e.g. 001)")
    parser.add_argument("--factor", type=positive_float,
                        help="simulate the input from the references at this factor instead of using imagesTr/")
    parser.add_argument("--no-upper-bound", dest="upper_bound", action="store_false",
                        help="skip training the supervised upper bound")
    parser.add_argument("--retrain-upper-bound", action="store_true", help="train it again even if it exists")
    parser.add_argument("--ablation", action="store_true",
                        help="the pre-training ablation: ssft from video+mrft with the budget, then from video and "
                             "from scratch for the same number of iterations (trains the runs that do not exist yet)")
    parser.add_argument("--budget-minutes", type=positive_float,
                        help="training budget of the upper bound and the ablation runs (default: the plan's ssft "
                             "budget)")
    parser.add_argument("--classic", nargs="+", choices=tuple(SHORT_NAMES), default=list(SHORT_NAMES),
                        help="classic interpolators to compare (default: all; cubic is always included, "
                             "gains are measured against it)")
    parser.add_argument("-device", choices=("cpu", "cuda"), default="cpu")
    return parser


def run_benchmark(args: argparse.Namespace) -> None:
    import shutil

    from isrnet import paths
    from isrnet.datasets import resolve_dataset
    from isrnet.evaluation.ablation import ablation_runs, plot_ablation_curves
    from isrnet.evaluation.benchmark import (benchmark, load_cases, markdown_table, summary_table, terminal_table,
                                            trained_models)
    from isrnet.evaluation.qc_figure import qc_figure
    from isrnet.evaluation.results_page import write_results_page
    from isrnet.evaluation.upper_bound import RUN, train_upper_bound
    from isrnet.experiment_planning.plans_file import load_plans
    from isrnet.training.checkpointing import load_checkpoint

    start = time.time()
    dataset = resolve_dataset(args.dataset)
    plans = load_plans(dataset)
    cases = load_cases(dataset, plans, args.factor)
    budget = args.budget_minutes or plans["training"]["budget_minutes"]
    ablation = ablation_runs(dataset, plans, budget, args.device) if args.ablation else {}
    bound = paths.results_folder() / dataset / RUN
    if args.upper_bound and (args.retrain_upper_bound or not (bound / "checkpoint_final.pth").is_file()):
        shutil.rmtree(bound, ignore_errors=True)
        train_upper_bound(dataset, plans, cases, budget, args.device)
    models = trained_models(dataset, plans)
    if not args.upper_bound:
        models = {k: v for k, v in models.items() if not k.startswith("supervised")}
    classic = tuple(SHORT_NAMES[name] for name in SHORT_NAMES if name in set(args.classic) | {"cubic"})
    table, outputs = benchmark(cases, models, args.device, classic=classic)
    output = paths.results_folder() / dataset / "benchmark"
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / "benchmark.csv", index=False, float_format="%.4f")
    summary = summary_table(table)
    summary.to_csv(output / "benchmark_summary.csv", float_format="%.4f")
    (output / "benchmark_summary.md").write_text(markdown_table(summary))
    print(terminal_table(summary, len(cases)))

    best = next((k for k in models if "ssft" in k and "__" not in str(models[k].parent.name)), None)
    pretrained = next((k for k in models if "mrft" in k and "ssft" not in k), None)
    figures = []
    for case in cases:
        panels = {"input (nearest)": outputs[case.name]["nearest"]} if "nearest" in outputs[case.name] else {}
        panels["cubic B-spline"] = outputs[case.name]["cubic B-spline"]
        for label in dict.fromkeys(label for label in (pretrained, best) if label):
            panels[label.replace("isrnet ", "isrnet\n").replace(" (", "\n(")] = outputs[case.name][label]
        figures.append(output / f"qc_{case.name}.png")
        qc_figure(case.reference, panels, case.slice_axis, figures[-1], f"{dataset} {case.name} x{case.factor:g}")

    ablation_table, curves, ablation_note = None, None, ""
    if ablation:
        by_checkpoint = {str(path): label for label, path in models.items()}
        rows = {"(mrft alone, no ssft)": pretrained, **{arm: by_checkpoint[str(path)] for arm, path in ablation.items()}}
        ablation_table = summary.loc[[label for label in rows.values() if label]].copy()
        ablation_table.index = [arm for arm, label in rows.items() if label]
        ablation_table.to_csv(output / "ablation.csv", float_format="%.4f")
        curves = output / "ablation_curves.png"
        iterations = load_checkpoint(ablation["ssft from video+mrft"])["iteration"]
        ablation_note = f"{iterations} ssft iterations each; the video+mrft arm's budget: {budget:g} min"
        plot_ablation_curves(ablation, curves, f"{dataset}: pre-training ablation ({iterations} ssft iterations each)")
        print("\npre-training ablation (final PSNR against the reference):")
        print(ablation_table[["psnr_synth", "gain_vs_cubic_dB", "ssim_synth"]].to_string(float_format="{:.3f}".format))
    input_note = (f"thick slices simulated from the references at x{args.factor:g}" if args.factor
                  else "the dataset's own imagesTr (thick slices)")
    page = write_results_page(output, dataset, [c.name for c in cases], input_note, summary, models, figures,
                              ablation_table, curves, ablation_note, args.device)
    print(f"written to {output} (open {page.name} for the table with figures) in {time.time() - start:.0f} s")


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: run_benchmark(args))
