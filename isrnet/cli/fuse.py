"""`isr_fuse -i STACK1 STACK2 [...] -o OUT_FILE`: several stacks of one patient -> one near-isotropic volume."""
from __future__ import annotations

import argparse
from pathlib import Path

from isrnet.cli.common import positive_float, positive_int, run_cli
from isrnet.utilities.device import DEVICES

EPILOG = """Each stack (a file or a DICOM series folder, any orientation, spacing and slice thickness) is
super-resolved with its own settings and estimated slice profile, registered rigidly to the reference stack
(the first, or --reference K), resampled onto one isotropic grid, brought onto the reference's intensity scale,
and fused frequency by frequency: each stack counts most where its acquisition measured best (in-plane), least
along its own slice axis. Writes OUT_FILE, OUT_FILE's .json sidecar (registration per stack, intensity maps,
weights) and NAME_qc.png (three orthogonal views of every stack and the result).

model choice as isr_predict: -d DATASET (its ssft run, else mrft), -m MODEL_DIR|CHECKPOINT, or the shipped weights.

examples:
  isr_fuse -i knee_sag.nii.gz knee_cor.nii.gz knee_ax.nii.gz -o knee_fused.nii.gz
  isr_fuse -i dicom/t2_ax/ dicom/t2_cor/ -o brain_t2_fused.nii.gz -d 10 --target-spacing 0.8
  isr_fuse -i scans/ -o fused/                 per patient: P01__sag + P01__cor -> fused/P01.nii.gz
  isr_fuse -i scans/ -o fused/ -num_parts 4 -part_id 0        (a patient never spans two parts)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_fuse", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="inputs", type=Path, nargs="+", required=True,
                        help="the stacks of one patient (files or DICOM series folders), or one folder of many "
                             "patients' stacks (grouped by a __ infix, P01__sag, or dataset.json 'patients')")
    parser.add_argument("-o", dest="output", type=Path, required=True,
                        help="output file (e.g. knee_fused.nii.gz), or a folder when -i is a folder")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("-d", dest="dataset", help="use this dataset's trained model (its ssft run, else mrft)")
    model.add_argument("-m", dest="model", type=Path, help="a results run folder or a checkpoint file")
    parser.add_argument("--stage", help="with -d: which run (ssft, mrft, ...)")
    parser.add_argument("--target-spacing", type=positive_float, metavar="MM",
                        help="isotropic spacing of the fused grid (default: the finest in-plane spacing)")
    parser.add_argument("--field-of-view", choices=("union", "reference"), default="union",
                        help="union of all stacks (default) or the reference stack's field of view")
    parser.add_argument("--reference", type=int, default=0, metavar="K",
                        help="0-based index of the stack the others are registered to (default 0: the first)")
    parser.add_argument("--allow-mixed-contrast", action="store_true",
                        help="fuse stacks whose contrast differs from the reference's: their structure is mapped "
                             "onto the reference's contrast (default: refused)")
    dicom = parser.add_argument_group("DICOM output (see documentation/clinical_use.md)")
    dicom.add_argument("--output-format", choices=("nifti", "dicom", "same"), default="nifti",
                       help="nifti (default); dicom: -o names a new folder holding a derived series of the "
                            "reference stack's patient and study; same: DICOM when the reference stack is DICOM")
    dicom.add_argument("--dicom-reference", type=Path, metavar="SERIES_FOLDER",
                       help="with --output-format dicom and a NIfTI reference stack: the series whose identity it takes")
    dicom.add_argument("--anonymise", action="store_true", help="DICOM output without identity")
    parser.add_argument("--no-qc", dest="qc_figure", action="store_false", help="do not write the QC figure")
    parser.add_argument("-device", choices=DEVICES, default="cpu")
    parser.add_argument("-num_parts", type=positive_int, default=1, help="folder mode: split the patients")
    parser.add_argument("-part_id", type=int, default=0, help="folder mode: which part (0-based)")
    return parser


def fuse(args: argparse.Namespace) -> int:
    from isrnet.errors import IsrnetError
    from isrnet.fusion import FuseOptions, fuse_folder, fuse_paths
    from isrnet.imageio.formats import is_dicom_folder
    from isrnet.inference import OutputFormat, resolve_model
    model = resolve_model(args.dataset, args.stage, args.model)
    output = OutputFormat(args.output_format, args.dicom_reference, args.anonymise)
    options = FuseOptions(args.target_spacing, args.field_of_view, args.reference, args.allow_mixed_contrast,
                          args.device, args.qc_figure, num_parts=args.num_parts, part_id=args.part_id, output=output)
    folder_mode = len(args.inputs) == 1 and args.inputs[0].is_dir() and not is_dicom_folder(args.inputs[0])
    if folder_mode:
        outcome = fuse_folder(args.inputs[0], args.output, model, options)
        return 1 if any(error is not None for error in outcome.values()) else 0
    if args.num_parts != 1:
        raise IsrnetError("-num_parts/-part_id split a folder of patients (isr_fuse -i FOLDER -o OUT_FOLDER)")
    fuse_paths(args.inputs, args.output, model, options)
    return 0


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: fuse(args))
