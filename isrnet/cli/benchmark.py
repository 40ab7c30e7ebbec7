"""`isr_benchmark -d D`: classic interpolation vs isrnet (every trained stage) vs a supervised upper bound."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import positive_float, run_cli
from isrnet.evaluation.baselines import SHORT_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="isr_benchmark", description=__doc__ + " Needs a dataset with referenceTr/. Prints a table "
        "(PSNR/SSIM over synthesised slices and all slices, seconds per volume, output voxels per second), "
        "writes benchmark.csv, benchmark_summary.csv/.md and qc_<case>.png to $isrnet_results/DatasetXXX/benchmark/.")
    parser.add_argument("-d", dest="dataset", required=True, help="dataset with referenceTr/ (e.g. 001)")
    parser.add_argument("--factor", type=positive_float,
                        help="simulate the input from the references at this factor instead of using imagesTr/")
    parser.add_argument("--no-upper-bound", dest="upper_bound", action="store_false",
                        help="skip training the supervised upper bound")
    parser.add_argument("--retrain-upper-bound", action="store_true", help="train it again even if it exists")
    parser.add_argument("--budget-minutes", type=positive_float,
                        help="upper-bound training budget (default: the plan's ssft budget)")
    parser.add_argument("--classic", nargs="+", choices=tuple(SHORT_NAMES), default=list(SHORT_NAMES),
                        help="classic interpolators to compare (default: all; cubic is always included, "
                             "gains are measured against it)")
    parser.add_argument("-device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()

    def body() -> None:
        import shutil

        from isrnet import paths
        from isrnet.datasets import resolve_dataset
        from isrnet.evaluation.benchmark import (benchmark, load_cases, markdown_table, summary_table, terminal_table,
                                                trained_models)
        from isrnet.evaluation.qc_figure import qc_figure
        from isrnet.evaluation.upper_bound import RUN, train_upper_bound
        from isrnet.experiment_planning.plans_file import load_plans

        start = time.time()
        dataset = resolve_dataset(args.dataset)
        plans = load_plans(dataset)
        cases = load_cases(dataset, plans, args.factor)
        bound = paths.results_folder() / dataset / RUN
        if args.upper_bound and (args.retrain_upper_bound or not (bound / "checkpoint_final.pth").is_file()):
            shutil.rmtree(bound, ignore_errors=True)
            train_upper_bound(dataset, plans, cases, args.budget_minutes, args.device)
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
        best = next((k for k in models if "ssft" in k and "scratch" not in k), next(iter(models), None))
        pretrained = next((k for k in models if "mrft" in k and "ssft" not in k), None)
        for case in cases:
            panels = {"input (nearest)": outputs[case.name]["nearest"]} if "nearest" in outputs[case.name] else {}
            panels["cubic B-spline"] = outputs[case.name]["cubic B-spline"]
            for label in dict.fromkeys(label for label in (pretrained, best) if label):
                panels[label.replace("isrnet ", "isrnet\n").replace(" (", "\n(")] = outputs[case.name][label]
            qc_figure(case.reference, panels, case.slice_axis, output / f"qc_{case.name}.png",
                      f"{dataset} {case.name} x{case.factor:g}")
        print(f"written to {output} in {time.time() - start:.0f} s")

    run_cli(parser.prog, body)
