"""Where the guard's witness and the reference disagree: is it the witness's scoring, or the gap it must predict across?

The witness (training/hidden_slice_witness.py) hides every 2nd real slice, so it judges the weights across twice the
case's gap; the reference of a simulated cell judges them at the case's own gap. For each ssft run of each cell of
a finished benchmarks/ssft_mismatch_set.py output (--variant runs included; their checkpoint_start.pth and
checkpoint_latest.pth are read, nothing is trained), the fine-tuned weights minus the start, in dB:
- own gap: the thick-slice case predicted at 1 mm, PSNR over the synthesised slices against the 1 mm reference
  (the cell's tuned_gain, scored again);
- twice the gap: every 2nd thick slice removed, the rest predicted at 1 mm, against the same reference: what the
  witness would read if it had the truth;
- witness: the guard's own signal on the run's witness volumes (hidden thick slices at the best blur).
If the witness agrees with "twice the gap" but not with "own gap", its scoring is right and the gain does not carry
across the gaps.
Usage: python benchmarks/witness_transfer.py --grid benchmark_output/ssft_mismatch/deepmriprep [--csv FILE]
       (about 25 s per cell on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isrnet import paths  # noqa: E402
from isrnet.acquisition.slice_profile import ProfileSource  # noqa: E402
from isrnet.evaluation.hidden_slices import hidden_slice_axis, thin_case  # noqa: E402
from isrnet.evaluation.metrics import compare  # noqa: E402
from isrnet.imageio import Volume, read_volume  # noqa: E402
from isrnet.imageio.geometry import input_slice_positions  # noqa: E402
from isrnet.inference import PredictionSettings, Predictor  # noqa: E402
from isrnet.plans import Plans  # noqa: E402
from isrnet.preprocessing.preprocessor import load_training_cases  # noqa: E402
from isrnet.training.hidden_slice_witness import hidden_slice_score, witness_volumes  # noqa: E402

CASE = "brain"  # ssft_mismatch_set.py's one case per dataset


def against_reference(predictor: Predictor, image: Volume, reference: Volume, axis: int, factor: float,
                      thickness: float) -> float:
    """PSNR over the synthesised slices of `image` predicted at `factor`, against the 1 mm reference."""
    settings = PredictionSettings(factor=factor, thickness_mm=thickness, slice_axis=axis,
                                  thickness_source=ProfileSource.PLANS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # twice the gap: a told gap beyond the case's own, expected here
        output = predictor.predict(image, settings)
    return compare(output, reference, axis, input_slice_positions(image, axis))["psnr_synth"]


def score_run(grid: Path, raw: Path, run: Path) -> dict:
    plans = Plans.from_json(json.loads((run / "plans.json").read_text()))
    thickness = plans.cases[CASE].slice_profile.thickness_mm
    image = read_volume(raw / "imagesTr" / f"{CASE}.nii.gz")
    reference = read_volume(raw / "referenceTr" / f"{CASE}.nii.gz")
    axis = hidden_slice_axis(image.spacing)
    factor = image.spacing[axis] / min(image.spacing)
    thinned = thin_case(CASE, image, axis, 2).thinned
    with paths.folders_under(grid):
        volumes = witness_volumes(load_training_cases(raw.name, plans))
    scores = {}
    for name in ("start", "latest"):
        predictor = Predictor.from_checkpoint(run / f"checkpoint_{name}.pth")
        witness = hidden_slice_score(predictor.network, volumes)
        scores[name] = (against_reference(predictor, image, reference, axis, factor, thickness),
                        against_reference(predictor, thinned, reference, axis, 2 * factor, thickness),
                        witness.psnr if witness is not None else float("nan"))
    own, twice, witness = (scores["latest"][i] - scores["start"][i] for i in range(3))
    return {"cell": raw.name.split("_", 1)[1], "run": run.name, "factor": factor, "thickness_mm": thickness, "own_gap_dB": own,
            "twice_the_gap_dB": twice, "witness_dB": witness}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, required=True,
                        help="one source's folder of a ssft_mismatch_set.py output (raw/, preprocessed/, results/)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    grid = args.grid.resolve()
    rows = []
    runs = [(raw, run) for raw in sorted((grid / "raw").glob("Dataset*"))
            for run in sorted((grid / "results" / raw.name).glob("ssft__*"))]  # a --variant cell is a run of its own
    for raw, run in runs:
        rows.append(score_run(grid, raw, run))
        print(f"{rows[-1]['cell']} {rows[-1]['run']}: own gap {rows[-1]['own_gap_dB']:+.2f}, twice the gap "
              f"{rows[-1]['twice_the_gap_dB']:+.2f}, witness {rows[-1]['witness_dB']:+.2f} dB", flush=True)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.4f")
    agree = (table.twice_the_gap_dB > 0) == (table.witness_dB > 0)
    carries = (table.twice_the_gap_dB > 0) == (table.own_gap_dB > 0)
    print("fine-tuned minus start, dB:")
    print(table.to_string(index=False, float_format="{:+.2f}".format))
    print(f"the witness agrees in sign with twice the gap on {int(agree.sum())} of {len(table)} runs; twice the gap "
          f"agrees with the own gap on {int(carries.sum())} of {len(table)}")


if __name__ == "__main__":
    main()
