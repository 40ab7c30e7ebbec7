"""The BIDS derivatives dataset `isr_bids` writes: its description, the output names and their JSON sidecars.

A scan `sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz` becomes `sub-01/ses-1/anat/sub-01_ses-1_desc-isr_T2w.nii.gz`
(desc is the last entity before the suffix). Its sidecar keeps the source sidecar's fields that still hold (the
acquisition's: echo and repetition times, field strength, ...), drops those that describe the old slice grid,
names its source (`Sources`, a BIDS URI) and records isrnet's model, factor and slice profile under `isrnet`.
isrnet's own files (logs, the group table, a --train workspace, hidden-slice pages) are listed in .bidsignore, and
so is a dwi derivative's copy of its source's .bval/.bvec.
"""
from __future__ import annotations

import re
from pathlib import Path

from isrnet import __version__
from isrnet.acquisition.slice_profile import PLAUSIBLE_RATIO, plausible_thickness
from isrnet.bids.layout import BidsScan
from isrnet.utilities.files import atomic_write_text, save_json

DESC = "isr"
BIDS_VERSION = "1.10.0"
DATASET_LINK = "raw"  # the name the derivatives give the source dataset in DatasetLinks and BIDS URIs
NO_LONGER_HOLD = ("SliceThickness", "SpacingBetweenSlices", "SliceTiming")  # the old slice grid's
ISRNET_FOLDERS = ("logs", "group", "work", "evaluation")  # not BIDS: in .bidsignore (the validator skips them)
# A dwi derivative's gradient table beside it, as diffusion tools expect; BIDS 1.10's derivative rules name no
# .bval/.bvec, so the validator is told to skip them.
IGNORED_PATTERNS = ("*_desc-isr_dwi.bval", "*_desc-isr_dwi.bvec")
README = """# isrnet derivatives

Inter-slice super-resolution of the source dataset's scans by isrnet (`isr_bids`): every
`<source entities>_desc-isr_<suffix>.nii.gz` is its source scan with the missing slices synthesised along the
slice axis. Its JSON sidecar names the source (`Sources`), keeps the source sidecar's acquisition fields and
records isrnet's model, upsampling factor and the slice profile used (`isrnet`). isrnet's own files (`logs/`,
`group/`, `work/`, `evaluation/`) are listed in `.bidsignore`.
"""


def output_relative(scan: BidsScan, extension: str = ".nii.gz") -> Path:
    """The derivative's path relative to the derivatives root: the source's folder, `desc-isr` added."""
    base = scan.stem[: -len(scan.suffix) - 1]  # without '_<suffix>'
    base = re.sub(r"_desc-[a-zA-Z0-9]+", "", base)
    return scan.relative.parent / f"{base}_desc-{DESC}_{scan.suffix}{extension}"


def sidecar_thickness(scan: BidsScan, slice_spacing: float) -> tuple[float | None, str | None]:
    """(SliceThickness in mm when the sidecar states a plausible one, else None; a note when it is ignored or
    SpacingBetweenSlices disagrees with the image's own slice spacing)."""
    notes = []
    spacing = scan.metadata.get("SpacingBetweenSlices")
    if isinstance(spacing, (int, float)) and spacing > 0 and abs(spacing - slice_spacing) > 0.05 * slice_spacing:
        notes.append(f"sidecar SpacingBetweenSlices {spacing:g} mm differs from the image's slice spacing "
                     f"{slice_spacing:g} mm (the image's geometry is used)")
    thickness = scan.metadata.get("SliceThickness")
    if thickness is not None and not isinstance(thickness, (int, float)):
        notes.append(f"sidecar SliceThickness {thickness!r} is not a number: ignored")
        thickness = None
    elif thickness is not None and not plausible_thickness(thickness, slice_spacing):
        notes.append(f"sidecar SliceThickness {thickness:g} mm ignored: implausible for {slice_spacing:g} mm spacing "
                     f"({PLAUSIBLE_RATIO[0]:g}-{PLAUSIBLE_RATIO[1]:g}x)")
        thickness = None
    return (float(thickness) if thickness is not None else None), ("; ".join(notes) or None)


def write_dataset_description(output_dir: Path, bids_dir: Path, source_name: str | None) -> None:
    """dataset_description.json (DatasetType derivative, GeneratedBy isrnet), README.md and .bidsignore, when
    missing."""
    description = output_dir / "dataset_description.json"
    if not description.is_file():
        save_json({"Name": f"isrnet inter-slice super-resolution of {source_name or bids_dir.name}",
                   "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
                   "GeneratedBy": [{"Name": "isrnet", "Version": __version__,
                                    "Description": "inter-slice super-resolution of MR images (Wang et al., ISBI "
                                                   "2024): the missing slices synthesised along the slice axis"}],
                   "DatasetLinks": {DATASET_LINK: str(Path(bids_dir).resolve().as_uri())}}, description)
    if not (output_dir / "README.md").is_file():
        atomic_write_text(README, output_dir / "README.md")
    ignore = output_dir / ".bidsignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    missing = [entry for entry in (*ISRNET_FOLDERS, *IGNORED_PATTERNS) if entry not in lines]
    if missing:
        atomic_write_text("\n".join(lines + missing) + "\n", ignore)


def derivative_sidecar(scan: BidsScan, record: dict) -> dict:
    """The derivative's JSON sidecar: the source's fields that still hold, `Sources`, and isrnet's `record`."""
    kept = {key: value for key, value in scan.metadata.items() if key not in NO_LONGER_HOLD}
    profile = record["slice_profile"]
    kept.update({
        "Description": f"isrnet inter-slice super-resolution x{record['factor']:.3g} along the slice axis, from "
                       f"slices {profile['thickness_mm']:g} mm thick ({profile['thickness_source']})",
        "Sources": [f"bids:{DATASET_LINK}:{scan.relative.as_posix()}"],
        "SkullStripped": bool(scan.metadata.get("SkullStripped", False)),  # isrnet does not strip; the source's
        "isrnet": record,
    })
    return kept
