"""`isr_evaluate -ref REF -pred PRED`: PSNR and SSIM (3D, foreground mask) matched by physical position."""
from __future__ import annotations

import argparse
from pathlib import Path

from isrnet.cli.common import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="isr_evaluate", description=__doc__ + " Cases are matched by file name; metrics over all slices "
        "and, when the prediction's sidecar JSON names the input slices, over the synthesised slices only. "
        "Data range: 99.9th percentile - minimum of the reference in its foreground mask.")
    parser.add_argument("-ref", type=Path, required=True, help="reference file or folder")
    parser.add_argument("-pred", type=Path, required=True, help="prediction file or folder (from isr_predict)")
    parser.add_argument("-o", dest="output", type=Path, default=None,
                        help="results base name (default: PRED/evaluation -> evaluation.csv, evaluation.json)")
    args = parser.parse_args()

    def body() -> None:
        from isrnet.evaluation.evaluate import evaluate_folders, write_results
        table = evaluate_folders(args.ref, args.pred)
        base = args.output or ((args.pred if args.pred.is_dir() else args.pred.parent) / "evaluation")
        summary = write_results(table, base)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"mean over {summary['cases']} case(s): " + ", ".join(
            f"{k} {v:.4f}" for k, v in summary["mean"].items() if k.startswith(("psnr", "ssim"))))
        print(f"written: {base.with_suffix('.csv')}, {base.with_suffix('.json')}")

    run_cli(parser.prog, body)
