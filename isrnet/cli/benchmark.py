"""`isr_benchmark -d D`: classic interpolation vs isrnet (every trained stage) vs a supervised upper bound.
`isr_benchmark -d D --hidden-slices` / `-i SCANS --hidden-slices`: the same question on real scans without any
reference: real slices are hidden, predicted and compared."""
from __future__ import annotations

import argparse
from pathlib import Path

from isrnet.cli.common import positive_float, run_cli
from isrnet.evaluation.baselines import SHORT_NAMES
from isrnet.evaluation.hidden_slices import DEFAULT_CLASSIC, DEFAULT_KEEP_EVERY
from isrnet.utilities.device import DEVICES

EPILOG = """examples:
  isr_benchmark -d 001                          everything trained so far + the supervised upper bound
  isr_benchmark -d 001 --no-upper-bound --classic nearest linear cubic   quick (what quickstart.sh runs)
  isr_benchmark -d 001 --ablation --budget-minutes 6   + ssft from scratch / video / video+mrft (6 min each)
  isr_benchmark -d 002 --factor 4              simulate x4 thick slices from the references instead

  on your own scans, no reference needed (every 2nd real slice hidden, predicted, compared):
  isr_benchmark -d 002 --hidden-slices --budget-minutes 4         + ssft trained on the thinned scans (4 min)
  isr_benchmark -i /data/t2_stacks --hidden-slices -o hs_t2       any folder of NIfTI/NRRD/MHA files or DICOM series
  isr_benchmark -i scan.nii.gz --hidden-slices --no-ssft --keep-every 3   pre-trained weights vs classic only
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isr_benchmark", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__ + " Without --hidden-slices it needs a dataset with referenceTr/. Prints a table (PSNR/SSIM "
        "over synthesised "
        "slices, seconds per volume) and writes to $isrnet_results/DatasetXXX/benchmark/: benchmark.csv (per "
        "case), benchmark_summary.csv/.md, qc_<case>.png and results.md (a page with table, model provenance, "
        "figures; with --ablation also ablation.csv and ablation_curves.png).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-d", dest="dataset", help="dataset (e.g. 001): with referenceTr/, or any with --hidden-slices")
    source.add_argument("-i", dest="inputs", type=Path,
                        help="with --hidden-slices: a scan, a DICOM series folder, or a folder of them (no dataset)")
    parser.add_argument("--factor", type=positive_float,
                        help="simulate the input from the references at this factor instead of using imagesTr/")
    parser.add_argument("--no-upper-bound", dest="upper_bound", action="store_false",
                        help="skip training the supervised upper bound")
    parser.add_argument("--retrain-upper-bound", action="store_true", help="train it again even if it exists")
    parser.add_argument("--ablation", action="store_true",
                        help="the pre-training ablation: ssft from video+mrft with the budget, then from video and "
                             "from scratch for the same number of iterations (trains the runs that do not exist yet)")
    parser.add_argument("--budget-minutes", type=positive_float,
                        help="training budget of the upper bound and the ablation runs, or with --hidden-slices of "
                             "ssft on the thinned scans (default: the plan's ssft budget)")
    hidden = parser.add_argument_group(
        "hidden-slice evaluation (real scans, no reference)",
        "Keep every K-th real slice, predict the removed real slices, compare them inside the head at each method's "
        "best blur width (the removed slices are thick). Methods: the classic interpolants, the pre-trained weights, "
        "ssft trained on the thinned scans only, optionally per-case adaptation, and (with -d) the dataset's own runs, "
        "marked because they trained on the full scans. The network then works at K x your factor with a gap: the "
        "score ranks methods on your scans, it is not the score at your own factor. Writes hidden_slices.csv, "
        "hidden_slices_summary.csv, hidden_slices_curves.csv, qc_hidden_<case>.png, blur_search.png and "
        "hidden_slices.md to -o (default with -d: $isrnet_results/DatasetXXX/hidden_slices).")
    hidden.add_argument("--hidden-slices", action="store_true", help="run the hidden-slice evaluation")
    hidden.add_argument("--keep-every", type=int, default=DEFAULT_KEEP_EVERY, metavar="K",
                        help=f"keep every K-th real slice (default {DEFAULT_KEEP_EVERY})")
    hidden.add_argument("--no-ssft", dest="ssft", action="store_false",
                        help="do not train ssft on the thinned scans (classic and pre-trained weights only)")
    hidden.add_argument("--iterations", type=int, help="ssft on the thinned scans for this many iterations instead "
                                                        "of a budget")
    hidden.add_argument("--adapt-minutes", type=positive_float,
                        help="also adapt per case for this long on each thinned scan (from ssft on the thinned scans)")
    hidden.add_argument("--seed", type=int,
                        help="seed of ssft on the thinned scans and of the adaptation (default: the plan's, 12345); "
                             "run again with other seeds to see how much the scores vary between runs")
    hidden.add_argument("-o", dest="output", type=Path,
                        help="output folder (default: -d: $isrnet_results/DatasetXXX/hidden_slices; -i: "
                             "./hidden_slices_<input name>)")
    parser.add_argument("--classic", nargs="+", choices=tuple(SHORT_NAMES),
                        help="classic interpolators to compare (default: all; cubic is always included, gains are "
                             "measured against it; with --hidden-slices: linear cubic, gains against the best)")
    parser.add_argument("-device", choices=DEVICES, default="cpu")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()

    if args.inputs is not None and not args.hidden_slices:
        parser.error("-i needs --hidden-slices (the reference benchmark runs on a dataset: -d)")
    if args.hidden_slices and (args.factor or args.ablation):
        parser.error("--hidden-slices excludes --factor and --ablation")
    hidden_only = {"--keep-every": args.keep_every != DEFAULT_KEEP_EVERY, "--no-ssft": not args.ssft,
                   "--iterations": args.iterations is not None, "--adapt-minutes": args.adapt_minutes is not None,
                   "--seed": args.seed is not None, "-o": args.output is not None}
    if not args.hidden_slices and any(hidden_only.values()):
        parser.error(f"{', '.join(k for k, given in hidden_only.items() if given)} only work(s) with --hidden-slices")

    def body() -> None:
        if args.hidden_slices:
            from isrnet.benchmarking import HiddenSliceOptions, run_hidden_slices
            options = HiddenSliceOptions(args.keep_every, args.ssft, args.budget_minutes, args.iterations,
                                         args.adapt_minutes, tuple(args.classic or DEFAULT_CLASSIC),
                                         device=args.device, seed=args.seed, output=args.output)
            print(run_hidden_slices(args.inputs if args.inputs is not None else args.dataset, options).text)
            return
        from isrnet.benchmarking import BenchmarkOptions, run_benchmark
        options = BenchmarkOptions(args.factor, args.upper_bound, args.retrain_upper_bound, args.ablation,
                                   args.budget_minutes, tuple(args.classic or SHORT_NAMES), args.device)
        print(run_benchmark(args.dataset, options).text)

    run_cli(parser.prog, body)
