"""Which validation pairs should the never-worse guard judge on? Scores finished ssft runs offline.

For each run folder (results/DatasetXXX_Name/ssft__TAG, from a run that started from weights), the starting
(checkpoint_start.pth) and fine-tuned (checkpoint_latest.pth) weights are scored, with the run's own plans and
seed, on three pair constructions:
  inplane-val    held-out in-plane degradations (what the guard uses)
  slices-val     hidden real slices, held-out rows (ssft's 'slices' pairs: the real slice axis)
  inplane-train  in-plane degradations from the training band (what the run fitted)
A construction is a good guard when the sign of (fine-tuned - start) matches the reference PSNR's, which
isr_benchmark (or ssft_mismatch_set.py) gives for the same runs.
Usage: python benchmarks/guard_pair_choice.py RUN [RUN ...] [--batches 4] [--no-noise-matching]
       with isrnet_raw / isrnet_preprocessed / isrnet_results set to the folders the runs belong to
       (for ssft_mismatch_set.py's runs: its --out folder's raw, preprocessed and results).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from isrnet.experiment_planning.plans_file import plans_beside
from isrnet.inference.predictor import Predictor
from isrnet.preprocessing.preprocessor import load_training_cases
from isrnet.runs import DEBUG_FILE
from isrnet.training.data_loading import fixed_batches
from isrnet.training.samplers import build_sampler
from isrnet.training.trainer import psnr
from isrnet.utilities.files import load_json

CONSTRUCTIONS = {"inplane-val": ("inplane", "val"), "slices-val": ("slices", "val"),
                 "inplane-train": ("inplane", "train")}


@torch.no_grad()
def mean_psnr(network: torch.nn.Module, batches: list) -> float:
    values = []
    for batch in batches:
        context, positions, targets, conditioning = (None if value is None else torch.as_tensor(value)
                                                     for value in batch.as_dict().values())
        values.append(psnr(network(context, positions, conditioning), targets))
    return float(np.mean(values))


def score_run(run: Path, batches: int, noise_matching: bool) -> list[dict]:
    plans, debug = plans_beside(run), load_json(run / DEBUG_FILE)
    cases = load_training_cases(run.parent.name, plans)
    start, tuned = (Predictor.from_checkpoint(run / f"checkpoint_{name}.pth").network for name in ("start", "latest"))
    context = plans.network["kwargs"]["context"]
    rows = []
    for label, (pairs, split) in CONSTRUCTIONS.items():
        options = {**plans.sampler, "pairs": pairs, "noise_matching": noise_matching}
        pairs_drawn = fixed_batches(build_sampler(options, cases, context, split), batches,
                                    plans.training.batch_size, plans.training.patch_size,
                                    debug["config"]["seed"])
        start_psnr, tuned_psnr = mean_psnr(start, pairs_drawn), mean_psnr(tuned, pairs_drawn)
        rows.append({"run": f"{run.parent.name}/{run.name}", "pairs": label, "start": start_psnr,
                     "fine-tuned": tuned_psnr, "difference": tuned_psnr - start_psnr})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batches", type=int, default=4, help="validation batches per construction (the "
                                                                "guard's default: 4)")
    parser.add_argument("--no-noise-matching", action="store_true",
                        help="score without noise matching (for runs made before it existed)")
    args = parser.parse_args()
    rows = [row for run in args.runs for row in score_run(run.resolve(), args.batches, not args.no_noise_matching)]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, formatters={"start": "{:.2f}".format, "fine-tuned": "{:.2f}".format,
                                                   "difference": "{:+.2f}".format}))


if __name__ == "__main__":
    main()
