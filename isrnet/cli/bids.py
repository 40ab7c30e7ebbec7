"""`isr_bids BIDS_DIR OUTPUT_DIR participant|group`: isrnet as a BIDS App (BIDS derivatives out)."""
from __future__ import annotations

import argparse
from pathlib import Path

from isrnet.cli.common import positive_float, positive_int, run_cli
from isrnet.utilities.device import DEVICES

EPILOG = """The participant level super-resolves every matching scan along its slice axis and writes
OUTPUT_DIR/sub-*/[ses-*/]<datatype>/<source entities>_desc-isr_<suffix>.nii.gz with a JSON sidecar (Sources, the
source sidecar's fields that still hold, and isrnet's model, factor and slice profile). A sidecar's SliceThickness
(BIDS inheritance applied) is the slice thickness when it is plausible; otherwise isrnet decides it as isr_predict
does. Scans already written are skipped; a scan that fails is listed and the others are still written.
The group level writes OUTPUT_DIR/group/isr_bids_summary.tsv and .png over every derivative.

examples:
  isr_bids study/ study/derivatives/isrnet participant                      every anat scan, shipped weights
  isr_bids study/ out/ participant --participant-label 01 02 --suffix T2w FLAIR
  isr_bids study/ out/ participant --train --train-minutes 30          ssft on the selected scans first
  isr_bids study/ out/ participant -d 001 --adapt-minutes 2             a trained isrnet dataset's model
  isr_bids study/ out/ participant --evaluate      also each scan's hidden-slice score (real slices hidden)
  isr_bids study/ out/ group
See documentation/bids.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_bids", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bids_dir", type=Path, help="the root of the BIDS dataset (holds dataset_description.json)")
    parser.add_argument("output_dir", type=Path, help="the derivatives dataset to write (e.g. BIDS_DIR/derivatives/isrnet)")
    parser.add_argument("analysis_level", choices=("participant", "group"))
    select = parser.add_argument_group("which scans (participant level)")
    select.add_argument("--participant-label", nargs="+", default=[], metavar="LABEL",
                        help="subjects, with or without 'sub-' (default: all)")
    select.add_argument("--session-label", nargs="+", default=[], metavar="LABEL",
                        help="sessions, with or without 'ses-' (default: all, and scans without sessions)")
    select.add_argument("--suffix", nargs="+", default=[], metavar="SUFFIX",
                        help="e.g. T1w T2w FLAIR (default: every image suffix; masks and segmentations never)")
    select.add_argument("--datatype", nargs="+", default=["anat"], choices=("anat", "func", "dwi"),
                        help="default: anat")
    model = parser.add_argument_group("the model (default: the weights shipped with isrnet)")
    which = model.add_mutually_exclusive_group()
    which.add_argument("-d", dest="dataset", help="an isrnet dataset's trained model (its ssft, else mrft run)")
    which.add_argument("-m", dest="model", type=Path, help="a results run folder or a checkpoint file")
    which.add_argument("--train", action="store_true",
                       help="first train ssft on the selected scans, in an isrnet dataset under --work-dir")
    model.add_argument("--stage", help="with -d: which run (ssft, mrft, or e.g. ssft__scratch)")
    model.add_argument("--train-minutes", type=positive_float, metavar="M", help="with --train: its time budget")
    model.add_argument("--train-iterations", type=positive_int, metavar="N",
                       help="with --train: a fixed iteration count instead (reproducible)")
    model.add_argument("--adapt-minutes", type=positive_float, metavar="M",
                       help="fine-tune a copy of the model on each scan for M minutes first (the guard keeps the "
                            "start when it is not beaten)")
    parser.add_argument("--evaluate", action="store_true",
                        help="also score each scan: every 2nd real slice hidden and predicted with the same model, "
                             "gain over the best classic interpolant (pages under OUTPUT_DIR/evaluation/)")
    parser.add_argument("--overwrite", action="store_true", help="redo scans already written (and --train)")
    parser.add_argument("--work-dir", type=Path, help="--train's isrnet dataset and temporary files "
                                                      "(default OUTPUT_DIR/work, listed in .bidsignore)")
    parser.add_argument("-device", choices=DEVICES, default="cpu")
    return parser


def bids(args: argparse.Namespace) -> int:
    from isrnet.bids import BidsOptions, Selection, run_group, run_participant
    from isrnet.errors import IsrnetError
    from isrnet.training.adaptation import AdaptationOptions
    if args.analysis_level == "group":
        run_group(args.output_dir)
        return 0
    if (args.train_minutes or args.train_iterations) and not args.train:
        raise IsrnetError("--train-minutes and --train-iterations go with --train")
    selection = Selection(tuple(args.participant_label), tuple(args.session_label), tuple(args.suffix),
                          tuple(args.datatype))
    options = BidsOptions(selection, args.dataset, args.stage, args.model, args.train, args.train_minutes,
                          args.train_iterations, AdaptationOptions(args.adapt_minutes), args.evaluate,
                          args.overwrite, args.device, args.work_dir)
    outcomes = run_participant(args.bids_dir, args.output_dir, options)
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: bids(args))
