"""IXI (brain-development.org/ixi-dataset) -> a high-resolution MR (hr_mr) dataset.

Files like `IXI002-Guys-0828-T1.nii.gz` (any depth below the source folder); one contrast (T1, T2 or
PD) per dataset, case name `IXI002-Guys-0828`. IXI volumes are NOT isotropic (T1 about
0.94 x 0.94 x 1.2 mm): the planner's isotropy check applies to hr_mr datasets and will flag them
unless `resample_isotropic` is set, which resamples each volume to its finest spacing (B-spline).
"""
from __future__ import annotations

import re
from pathlib import Path

from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import read_volume, write_volume
from dataset_conversion import resampling
from dataset_conversion.staging import build_dataset, dataset_folder_name, notice, write_dataset_json

CONTRASTS = ("T1", "T2", "PD")
IXI_PATTERN = re.compile(r"^(IXI\d{3}-[A-Za-z]+-\d+)-(T1|T2|PD|MRA)\.nii(?:\.gz)?$")


def find_ixi_files(source: Path, contrast: str = "T1") -> dict[str, Path]:
    """Case name -> file of `contrast` found in `source` (recursively)."""
    found: dict[str, Path] = {}
    for path in sorted(source.rglob("IXI*.nii*")):
        match = IXI_PATTERN.match(path.name)
        if match and match.group(2) == contrast and path.is_file():
            found.setdefault(match.group(1), path)
    return found


def _fill(folder: Path, files: dict[str, Path], name: str, contrast: str, resample: bool) -> None:
    spacings = []
    for number, (case, path) in enumerate(files.items(), 1):
        volume = read_volume(path)
        if resample:
            volume = resampling.resample_isotropic(volume, bspline=True)
        write_volume(volume, folder / "imagesTr" / f"{case}.nii.gz")
        spacings.append(volume.spacing)
        if number % 50 == 0 or number == len(files):
            notice(f"{name}: {number}/{len(files)} volumes")
    how = "resampled to isotropic at the finest spacing (B-spline)" if resample else "not resampled"
    write_dataset_json(folder, name, "hr_mr", ".nii.gz", len(files),
                       description=f"IXI {contrast} volumes ({len(files)}), {how}; "
                                   f"first spacing {tuple(round(s, 4) for s in spacings[0])} mm.",
                       licence="CC BY-SA 3.0 (IXI dataset, brain-development.org)")


def convert_ixi(source: str | Path, dataset_id: int | str, name: str | None = None, contrast: str = "T1",
                resample_isotropic: bool = False, overwrite: bool = False) -> Path:
    """Convert the IXI `contrast` volumes under `source` into raw dataset `dataset_id`_`name`."""
    source = Path(source).expanduser()
    contrast = contrast.upper()
    if contrast not in CONTRASTS:
        raise IsrnetError(f"contrast '{contrast}' is not an IXI contrast; use one of {', '.join(CONTRASTS)}")
    name = name or f"IXI{contrast}"
    folder_name = dataset_folder_name(dataset_id, name)
    if not source.is_dir():
        raise IsrnetError(f"{source}: not a folder; give the folder holding the IXI .nii.gz files")
    files = find_ixi_files(source, contrast)
    if not files:
        raise IsrnetError(f"{source}: no IXI {contrast} files (named like IXI002-Guys-0828-{contrast}.nii.gz)")
    return build_dataset(folder_name, lambda f: _fill(f, files, name, contrast, resample_isotropic), overwrite)
