"""`isr_predict -i IN -o OUT`: super-resolve volumes along their slice axis with exact output geometry."""
from __future__ import annotations

import argparse
from pathlib import Path

from isrnet.cli.common import positive_float, positive_int, run_cli
from isrnet.imageio.formats import OUTPUT_DTYPES, OUTPUT_FORMATS
from isrnet.utilities.device import DEVICES

EPILOG = """model choice: -d DATASET (its ssft run, else mrft, else video; --stage for another), -m MODEL_DIR|CHECKPOINT, or neither
for the weights shipped with isrnet. Outputs keep the input's name (NIfTI, or the input's format when it
holds float voxels), plus NAME.json describing model, factor and thickness. A time series (4D NIfTI, a DICOM
series with several temporal positions, Siemens mosaics) is read, predicted and written a few frames at a time and
keeps its frames, time step and unit (DICOM: temporal positions and frame times); its slice profile is decided once,
on the first frame.

examples:
  isr_predict -i scans/ -o sr/ -d 001                  the ssft model fine-tuned on dataset 001
  isr_predict -i t2_ax.nii.gz -o sr/ --target-spacing 1.0
  isr_predict -i scans/ -o sr/ -num_parts 4 -part_id 0 (on 4 nodes/processes: part_id 0..3)
  isr_predict -i scans/ -o sr/ -d 001 --adapt-minutes 2   each case fine-tunes its own copy first
  isr_predict -i dicom/t2_ax/ -o sr/ --output-format dicom     a derived series sr/t2_ax/ (same patient, study)
  isr_predict -i t2.nii.gz -o sr/ --output-format dicom --dicom-reference dicom/t2_ax/ --anonymise
  isr_predict -i cine_sax.nii.gz -o sr/ --slice-thickness 8    a 4D cine: every phase, the time axis kept
  isr_predict -i dicom/epi_mosaics/ -o sr/ --factor 2          a folder of Siemens mosaics -> one 4D NIfTI
See documentation/time_series.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_predict", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="input", type=Path, required=True,
                        help="a file (3D or 4D; a Siemens mosaic), a DICOM series folder, or a folder of files and DICOM "
                             "series folders")
    parser.add_argument("-o", dest="output", type=Path, required=True, help="output folder (never the input folder)")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("-d", dest="dataset", help="use this dataset's trained model: its ssft run (else mrft, else video); 1, 001 or Dataset001_Name")
    model.add_argument("-m", dest="model", type=Path, help="a results run folder or a checkpoint file")
    parser.add_argument("--stage", help="with -d: which run (ssft, mrft, video, or e.g. ssft__scratch)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--factor", type=positive_float, help="upsampling factor (default: the plan's for known "
                       "cases, else slice spacing / finest in-plane spacing)")
    scale.add_argument("--target-spacing", type=positive_float, help="output slice spacing in mm")
    parser.add_argument("--slice-thickness", type=positive_float,
                        help="input slice thickness (FWHM) in mm (default: the plan's, a plausible DICOM "
                             "SliceThickness, else estimated from the input; the sidecar records which)")
    parser.add_argument("--dtype", choices=OUTPUT_DTYPES,
                        help="output voxel type of NIfTI/NRRD/MHA outputs (default float32)")
    dicom = parser.add_argument_group("DICOM output (see documentation/clinical_use.md)")
    dicom.add_argument("--output-format", choices=OUTPUT_FORMATS, default="nifti",
                       help="nifti (default); dicom: one derived series per input (same patient and study, new "
                            "series); same: DICOM for DICOM input, NIfTI otherwise")
    dicom.add_argument("--dicom-reference", type=Path, metavar="SERIES_FOLDER",
                       help="with --output-format dicom for NIfTI/NRRD/MHA input: the DICOM series whose patient "
                            "and study identity the output takes")
    dicom.add_argument("--anonymise", action="store_true",
                       help="DICOM output without identity: new patient ID and UIDs, no names, no dates")
    adapt = parser.add_argument_group("patient-level adaptation (see documentation/prediction_and_evaluation.md)")
    budget = adapt.add_mutually_exclusive_group()
    budget.add_argument("--adapt-minutes", type=positive_float, metavar="M",
                        help="before predicting each case, fine-tune a copy of the model on that case alone for M "
                             "minutes (self-supervised, its own slice profile; the guard keeps the start when it "
                             "is not beaten; see --adapt-when). Default: off")
    budget.add_argument("--adapt-iterations", type=positive_int, metavar="N",
                        help="as --adapt-minutes, but a fixed number of iterations (reproducible)")
    adapt.add_argument("--adapt-seed", type=int, default=12345, help="seed of the per-case fine-tuning")
    adapt.add_argument("--adapt-when", choices=("always", "unlike"), default="always",
                       help="always (default): every case; unlike: fine-tune only a case whose noise, contrast or "
                            "slice profile is unlike every case the model was fine-tuned on (the sidecar says why a "
                            "case was skipped; it chose well on our development mix, not on an unseen source)")
    adapt.add_argument("--save-adapted", action="store_true",
                       help="keep each case's weights in OUT/adapted_weights/CASE.pth (+ CASE.json provenance); "
                            "predict with them again via -m OUT/adapted_weights/CASE.pth")
    parser.add_argument("--no-keep-input", dest="keep_input", action="store_false",
                        help="also re-synthesise output slices that coincide with input slices")
    parser.add_argument("--tta", action="store_true", help="average over in-plane flips (4x slower)")
    parser.add_argument("--whole-slices", action="store_true",
                        help="run the network over whole slices. Default: only around each gap's anatomy (the same "
                             "values there); background more than 8 pixels from it gets cubic interpolation")
    parser.add_argument("-device", choices=DEVICES, default="cpu")
    parser.add_argument("--amp", action="store_true", help="with -device cuda: run the network in float16 autocast")
    parser.add_argument("-np", dest="processes", type=positive_int, default=1, help="cases in parallel")
    parser.add_argument("-num_parts", type=positive_int, default=1, help="split the inputs into this many parts")
    parser.add_argument("-part_id", type=int, default=0, help="which part this process does (0-based)")
    return parser


def predict(args: argparse.Namespace) -> int:
    from isrnet.training.adaptation import AdaptationOptions
    from isrnet.inference import (OutputFormat, PredictionSettings, PredictOptions, predict_paths,
                                  resolve_model)
    model = resolve_model(args.dataset, args.stage, args.model)
    settings = PredictionSettings(args.factor, args.target_spacing, args.slice_thickness, args.keep_input, args.tta,
                                  whole_slices=args.whole_slices)
    output = OutputFormat(args.output_format, args.dicom_reference, args.anonymise)
    adaptation = AdaptationOptions(args.adapt_minutes, args.adapt_iterations, args.adapt_seed,
                                   save=args.save_adapted, when=args.adapt_when)
    options = PredictOptions(settings, args.dtype, args.device, args.processes, args.num_parts, args.part_id,
                             output, args.amp, adaptation)
    results = predict_paths(args.input, args.output, model, options)
    return 1 if any(result.failed for result in results) else 0


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: predict(args))
