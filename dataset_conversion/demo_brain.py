"""Dataset001_DemoBrain: a simulated clinical axial 4 mm acquisition with its 1 mm reference.

Source: deepmriprep's 0.5 mm brain-extracted T1 template (MIT). 2x2x2 block average -> 1 mm iso,
crop to the head + margin, slice axis = the most superior-inferior array axis, Gaussian slice
profile with FWHM 4 mm sampled every 4 mm (slice k at 1 mm slice 4k).

Like a user's NIfTI, the dataset does not state the thickness: planning estimates it. The true simulated
acquisition is recorded under `simulated_acquisition` in dataset.json, which only isr_benchmark reads.
"""
from __future__ import annotations

import time
from pathlib import Path

from isrnet.benchmarking.benchmark import SIMULATED_ACQUISITION_KEY
from isrnet.imageio.reader_writer import read_volume, write_volume
from isrnet.imageio.volume import Volume
from dataset_conversion.acquisition import fit_to_step, simulate_acquisition, superior_inferior_axis
from dataset_conversion.packaged_data import packaged_file
from dataset_conversion.resampling import block_average, crop, foreground_box
from dataset_conversion.staging import build_dataset, notice, write_dataset_json

FOLDER_NAME = "Dataset001_DemoBrain"
CASE = "DemoBrain"
SOURCE = ("deepmriprep", "0.3.0", "deepmriprep/data/templates/Template_05mm_bet.nii.gz")
STEP = 4  # slice spacing and FWHM in 1 mm voxels


def demo_reference(template: Volume, margin: int = 4) -> tuple[Volume, int]:
    """(1 mm reference cropped to the head, its superior-inferior array axis) from the 0.5 mm template."""
    hr = block_average(template, 2)
    hr = crop(hr, foreground_box(hr.array, margin))
    return hr, superior_inferior_axis(hr)


def make_demo_pair(template: Volume, step: int = STEP, margin: int = 4) -> tuple[Volume, Volume]:
    """(thick-slice LR, 1 mm HR reference) from the 0.5 mm template."""
    hr, axis = demo_reference(template, margin)
    hr = fit_to_step(hr, axis, step)
    lr = simulate_acquisition(hr, axis, step, float(step), "gaussian", 0.0)
    return lr, hr


def _fill(folder: Path) -> None:
    started = time.time()
    template = read_volume(packaged_file(*SOURCE))
    lr, hr = make_demo_pair(template)
    write_volume(lr, folder / "imagesTr" / f"{CASE}.nii.gz", "float32")
    write_volume(hr, folder / "referenceTr" / f"{CASE}.nii.gz", "float32")
    thickness = float(lr.dicom_thickness_mm)
    write_dataset_json(
        folder, "DemoBrain", "target", ".nii.gz", 1,
        description=(f"Simulated clinical axial acquisition: deepmriprep 0.3.0 Template_05mm_bet (0.5 mm "
                     f"population-average brain-extracted T1) block-averaged 2x2x2 to 1 mm iso, cropped to "
                     f"the head, then a Gaussian slice profile (FWHM {thickness:g} mm) sampled every "
                     f"{max(lr.spacing):g} mm along the superior-inferior axis (LR slice k = 1 mm slice "
                     f"{STEP}k). imagesTr: LR {lr.shape}, spacing {lr.spacing}; referenceTr: 1 mm HR "
                     f"{hr.shape}. An average template: smoother than a real scan, metrics are optimistic."),
        licence="MIT (deepmriprep, https://github.com/wwu-mmll/deepmriprep)",
        extra={SIMULATED_ACQUISITION_KEY: {CASE: {"thickness_mm": thickness, "family": "gaussian",
                                                  "slice_spacing_mm": float(max(lr.spacing))}}})
    notice(f"{FOLDER_NAME}: LR {lr.shape} at {lr.spacing} mm, HR {hr.shape} at {hr.spacing} mm "
           f"({time.time() - started:.1f} s)")


def convert_demo_brain(overwrite: bool = False) -> Path:
    """Build Dataset001_DemoBrain in the raw folder; returns its path."""
    return build_dataset(FOLDER_NAME, _fill, overwrite)
