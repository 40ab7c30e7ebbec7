"""File endings isrnet reads and writes, and how to split them off a file name."""
from __future__ import annotations

from pathlib import Path

IMAGE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
VIDEO_ENDINGS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
FRAME_ENDINGS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Formats that can hold float voxels; anything else is written as NIfTI.
FLOAT_WRITABLE = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
OUTPUT_DTYPES = ("float32", "float64", "int16", "uint16", "uint8")
OUTPUT_FORMATS = ("nifti", "dicom", "same")  # same: DICOM for DICOM input, NIfTI otherwise


def image_ending(path: str | Path) -> str | None:
    """The supported image ending of `path` ('.nii.gz', ...), or None."""
    name = Path(path).name.lower()
    for ending in IMAGE_ENDINGS:
        if name.endswith(ending):
            return ending
    return None


def strip_ending(path: str | Path) -> str:
    """File name without its (possibly double) image ending: 'a.nii.gz' -> 'a'."""
    name = Path(path).name
    ending = image_ending(name)
    return name[: -len(ending)] if ending else Path(name).stem


def is_dicom_folder(path: str | Path) -> bool:
    """A folder that holds at least one DICOM file (by the 'DICM' preamble or a .dcm ending)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(child.is_file() and is_dicom_file(child) for child in sorted(path.iterdir())[:50])


def is_dicom_file(path: str | Path) -> bool:
    """A DICOM file: a .dcm ending, or the 'DICM' preamble (Siemens' .IMA files and files without an ending)."""
    path = Path(path)
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def sidecar_of(output: str | Path) -> Path:
    """The JSON sidecar isr_predict writes beside an output: `a.nii.gz` -> `a.json`, DICOM folder `a/` -> `a.json`."""
    output = Path(output)
    return output.with_name((output.name if output.is_dir() else strip_ending(output)) + ".json")
