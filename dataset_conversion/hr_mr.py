"""Dataset901_HRMR: high-resolution, (nearly) isotropic real MR for stage 2 (MR fine-tuning).

MNI152 2009a T1 (nilearn, 1 mm iso), pydeface's average head (1.0 x 0.977 x 0.977 mm: 2.4 % anisotropy, inside
the ~5 % isotropy tolerance, so kept unresampled) and Colin27 (27 T1 scans of one person averaged, a whole head at
1 mm, Debian mricron-data: the one single-subject volume, real texture the two population averages lack). Never the
deepmriprep template: that is the demo's source and must not be training material for it.
Sources are (PyPI distribution, version, member) or ('debian', package, path).
"""
from __future__ import annotations

import time
from pathlib import Path

from isrnet.imageio.geometry import ISOTROPIC_RATIO, is_isotropic
from isrnet.imageio.reader_writer import read_volume, write_volume
from dataset_conversion.packaged_data import source_file
from dataset_conversion.staging import build_dataset, notice, write_dataset_json

FOLDER_NAME = "Dataset901_HRMR"
SOURCES = {
    "MNI152_2009a": ("nilearn", "0.14.1", "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"),
    "PydefaceMeanHead": ("pydeface", "2.1.0", "pydeface/data/mean_reg2mean.nii.gz"),
    "Colin27": ("debian", "mricron-data", "/usr/share/mricron/templates/ch2.nii.gz"),
}


def _fill(folder: Path) -> None:
    started = time.time()
    described = []
    for case, source in SOURCES.items():
        volume = read_volume(source_file(source))
        if not is_isotropic(volume.spacing):
            notice(f"warning: {source[2]} has spacing {volume.spacing} mm, not isotropic within "
                   f"a ratio of {ISOTROPIC_RATIO}")
        write_volume(volume, folder / "imagesTr" / f"{case}.nii.gz", "float32")
        described.append(f"{case}: {source[0]} {source[1]} {source[2].rsplit('/', 1)[-1]}, "
                         f"{volume.shape} at {tuple(round(s, 4) for s in volume.spacing)} mm")
        notice(f"{FOLDER_NAME}: {case} {volume.shape} at {volume.spacing} mm")
    write_dataset_json(
        folder, "HRMR", "hr_mr", ".nii.gz", len(SOURCES),
        description=("High-resolution near-isotropic T1 volumes read out of PyPI wheels and a Debian package, "
                     "stored float32 unresampled. " + "; ".join(described) + ". MNI152 and the pydeface "
                     "head are population averages (smoother than single scans); Colin27 is one person."),
        licence="MNI152 2009a: free use with copyright notice (McConnell Brain Imaging Centre, via nilearn, "
                "BSD-3 package); pydeface mean head: MIT (pydeface); Colin27 (ch2.nii.gz): BSD-3 (mricron-data, "
                "Debian)")
    notice(f"{FOLDER_NAME}: done ({time.time() - started:.1f} s)")


def convert_hr_mr(overwrite: bool = False) -> Path:
    """Build Dataset901_HRMR in the raw folder; returns its path."""
    return build_dataset(FOLDER_NAME, _fill, overwrite)
