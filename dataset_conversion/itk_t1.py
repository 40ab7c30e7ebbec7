"""Dataset002_ITKT1: a real single-subject T1 head (128x128x62, 2x2x3 mm) from Debian's ITK examples."""
from __future__ import annotations

import time
from pathlib import Path

from isrnet.imageio.reader_writer import read_volume, write_volume
from dataset_conversion.packaged_data import debian_file
from dataset_conversion.staging import build_dataset, notice, write_dataset_json

FOLDER_NAME = "Dataset002_ITKT1"
CASE = "KmeansT1"
PACKAGE = "insighttoolkit5-examples"
PATH = "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz"


def _fill(folder: Path) -> None:
    started = time.time()
    volume = read_volume(debian_file(PACKAGE, PATH))
    write_volume(volume, folder / "imagesTr" / f"{CASE}.nii.gz")
    write_dataset_json(
        folder, "ITKT1", "target", ".nii.gz", 1,
        description=(f"Real single-subject T1 head scan from the ITK examples (Debian {PACKAGE}, "
                     f"KmeansTest_T1UCharRaw.nii.gz), {volume.shape} voxels at {volume.spacing} mm, "
                     f"original integer values. Slice thickness not recorded; no high-resolution reference."),
        licence="Apache-2.0 (Insight Toolkit examples data, Debian package insighttoolkit5-examples)")
    notice(f"{FOLDER_NAME}: {volume.shape} at {volume.spacing} mm ({time.time() - started:.1f} s)")


def convert_itk_t1(overwrite: bool = False) -> Path:
    """Build Dataset002_ITKT1 in the raw folder; returns its path."""
    return build_dataset(FOLDER_NAME, _fill, overwrite)
