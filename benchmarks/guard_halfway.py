"""Weights between the start and the fine-tuned ones, on finished single-scan ssft runs of real scans: what the
guard's halfway weights (training.halfway_weights) are worth, and how the guard's rules compare.

For each scan of each --runs folder (the output of benchmarks/real_scans.py with ssft; its checkpoint_start.pth and
checkpoint_latest.pth are read, nothing is trained): the weights (1 - a) x start + a x fine-tuned for a in
{0, 0.25, 0.5, 0.75, 1} are scored by the judge (the scan's removed real slices, as real_scans.py scores them) and by
the witness (hidden slices of the thinned scan, as the guard scores them, with its margin of 1.645 standard errors of
the per-slice differences). Then four rules, each over every run: the fine-tuned weights when the witness's lead
clears its margin, else the start (the rule before 2026-12-06, late); the same, then the halfway weights when their
lead clears their margin (the default since); the same, but halfway only where the fine-tuned weights lead the
start at all; the largest a whose lead clears its margin. Printed: the judge per
run and a, each rule's choice, false keeps (kept, judge < -0.02 dB), false rejects (the start kept where the
fine-tuned weights gained >= 0.2 dB) and the mean result.
Usage: python benchmarks/guard_halfway.py --runs benchmark_output/real_scans [more folders] [--csv FILE]
       (about 30 s per run on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from isrnet import paths  # noqa: E402
from isrnet.benchmarking.hidden_slices_run import predict_thinned  # noqa: E402
from isrnet.evaluation.hidden_slices import hidden_slice_axis, score_output, thin_case  # noqa: E402
from isrnet.imageio import read_volume  # noqa: E402
from isrnet.inference.predictor import Predictor  # noqa: E402
from isrnet.plans import Plans  # noqa: E402
from isrnet.preprocessing.preprocessor import load_training_cases  # noqa: E402
from isrnet.training.checkpointing import load_checkpoint, network_from_checkpoint  # noqa: E402
from isrnet.training.guard import weights_between  # noqa: E402
from isrnet.training.hidden_slice_witness import hidden_slice_score, witness_margin, witness_volumes  # noqa: E402
from sources import FALSE_KEEP_DB, WORTH_DB  # noqa: E402

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
STANDARD_ERRORS = 1.645
RUN_FOLDER = Path("workspace/results/Dataset999_ScansKeepEvery2/ssft")


def weights_at(run: Path, share: float) -> Predictor:
    """A predictor with the weights `share` of the way from the run's start to its fine-tuned weights."""
    start, final = (load_checkpoint(run / f"checkpoint_{name}.pth") for name in ("start", "latest"))
    return Predictor(network_from_checkpoint({**start, "state_dict": weights_between(
        start["state_dict"], final["state_dict"], share)}), f"{run} at {share:g}")


def score_run(name: str, root: Path, table: pd.DataFrame) -> list[dict]:
    run = root / name / RUN_FOLDER
    plans = Plans.from_json(json.loads((run / "plans.json").read_text()))
    thickness = float(table[table.role == "pretrained"].thickness_mm.iloc[0])
    volume = read_volume(next((root / "inputs" / name).iterdir()))
    case = thin_case(name, volume, hidden_slice_axis(volume.spacing))
    with paths.folders_under(root / name / "workspace"):
        volumes = witness_volumes(load_training_cases("Dataset999_ScansKeepEvery2", plans))
    rows, start_judge, start_witness = [], None, None
    for share in SHARES:
        predictor = weights_at(run, share)
        judge = score_output(case, predict_thinned(predictor, case, thickness)).psnr
        witness = hidden_slice_score(predictor.network, volumes)
        if share == 0.0:
            start_judge, start_witness = judge, witness
        row = {"run": f"{root.name}/{name}", "share": share, "judge_dB": judge - start_judge}
        if witness is not None and start_witness is not None:
            row.update(witness_lead_dB=witness.psnr - start_witness.psnr,
                       witness_margin_dB=witness_margin(start_witness, witness, STANDARD_ERRORS))
        rows.append(row)
    return rows


def rules(table: pd.DataFrame) -> pd.DataFrame:
    """Per run and rule: the share kept and its judge."""
    table = table.assign(clears=(table.witness_lead_dB >= table.witness_margin_dB) & (table.share > 0))
    choices = {"fine-tuned or start": ((1.0,), False), "then halfway (default)": ((1.0, 0.5), False),
               "then halfway where the fine-tuned weights lead": ((1.0, 0.5), True),
               "largest share that clears": (tuple(reversed(SHARES[1:])), False)}
    rows = []
    for run, part in table.groupby("run", sort=False):
        judged = part.set_index("share").judge_dB
        leads = bool((part[part.share == 1.0].witness_lead_dB > 0).any())
        for rule, (order, needs_lead) in choices.items():
            order = order if leads or not needs_lead else order[:1]
            share = next((s for s in order if part[part.share == s].clears.any()), 0.0)
            rows.append({"run": run, "rule": rule, "share": share, "result_dB": judged[share],
                         "fine_tuned_dB": judged[1.0]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="benchmarks/real_scans.py output folders")
    parser.add_argument("--csv", type=Path, default=None, help="also write the per-share table here")
    args = parser.parse_args()
    rows = []
    for root in args.runs:
        table = pd.read_csv(root / "real_scans.csv")
        for name in table.scan.unique():
            if not (root / name / RUN_FOLDER / "checkpoint_start.pth").is_file():
                print(f"{root}/{name}: no ssft run with a start checkpoint, left out")
                continue
            rows += score_run(name, root.resolve(), table[table.scan == name])
            print(f"{root}/{name}: " + ", ".join(f"{r['share']:g}: {r['judge_dB']:+.2f}" for r in rows[-5:]),
                  flush=True)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.4f")
    print("judge (removed real slices) of each share's weights against the start, dB:")
    print(table.pivot_table(index="run", columns="share", values="judge_dB", sort=False)
          .to_string(float_format="{:+.2f}".format))
    chosen = rules(table)
    print("\nshare kept per rule:")
    print(chosen.pivot_table(index="run", columns="rule", values="share", sort=False).to_string())
    for rule, part in chosen.groupby("rule", sort=False):
        keeps = int(((part.share > 0) & (part.result_dB < -FALSE_KEEP_DB)).sum())
        worth = part.fine_tuned_dB >= WORTH_DB
        rejects = int((worth & (part.share == 0)).sum())
        print(f"{rule}: mean {part.result_dB.mean():+.3f} dB, worst {part.result_dB.min():+.3f}, false keeps {keeps}, "
              f"false rejects {rejects} of {int(worth.sum())} worth keeping, kept something on "
              f"{int((part.share > 0).sum())} of {len(part)}")


if __name__ == "__main__":
    main()
