"""`isr_benchmark -d D`: classic interpolation vs isrnet (every trained stage) vs a supervised upper bound."""
from __future__ import annotations

import argparse

from isrnet.cli.common import positive_float, run_cli
from isrnet.evaluation.baselines import SHORT_NAMES
from isrnet.utilities.device import DEVICES

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
    parser.add_argument("-device", choices=DEVICES, default="cpu")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()

    def body() -> None:
        from isrnet.evaluation import BenchmarkOptions, run_benchmark
        options = BenchmarkOptions(args.factor, args.upper_bound, args.retrain_upper_bound, args.ablation,
                                   args.budget_minutes, tuple(args.classic), args.device)
        print(run_benchmark(args.dataset, options).text)

    run_cli(parser.prog, body)
