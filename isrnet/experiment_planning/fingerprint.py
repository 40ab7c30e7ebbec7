"""Dataset fingerprint: per-case geometry, slice axis, slice profile and intensity statistics.

The slice profile of a target case (thickness, family, their sources and a confidence) is decided by
`acquisition.slice_profile.decide_slice_profile`: dataset.json, then a plausible DICOM SliceThickness, then an
estimate from the volume itself.

Written to `$isrnet_preprocessed/DatasetXXX_Name/dataset_fingerprint.json`. Bad cases (NaN/Inf, all-zero,
too few slices, unreadable, 2D) are reported together, one line each, and nothing is written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet import datasets, paths
from isrnet.errors import IsrnetError
from isrnet.acquisition.slice_profile import decide_slice_profile
from isrnet.stages import DatasetKind
from isrnet.imageio import read_volumes
from isrnet.imageio.geometry import (MIN_SLICES, factor_of, in_plane_axes, is_near_isotropic, slice_axis_of,
                                    slices_first)
from isrnet.imageio.video import read_clip
from isrnet.imageio.volume import Volume
from isrnet.intensity import bounding_box, foreground_mask
from isrnet.utilities.files import save_json
from isrnet.utilities.parallel import map_cases, raise_collected

FINGERPRINT_FILE = "dataset_fingerprint.json"


def intensity_statistics(array: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    values = array[mask] if mask.any() else array.ravel()
    p = np.percentile(array, [0.5, 99.5, 99.9])
    return {"min": float(array.min()), "max": float(array.max()), "p00_5": float(p[0]),
            "p99_5": float(p[1]), "p99_9": float(p[2]), "foreground_mean": float(values.mean()),
            "foreground_std": float(values.std()),
            "foreground_p00_5": float(np.percentile(values, 0.5)),
            "foreground_p99_5": float(np.percentile(values, 99.5))}


def volume_entry(volume: Volume, source: str | Path, slice_axis: int | None = None) -> dict:
    """The geometry and intensity fingerprint of one 3D volume (no slice profile); bad volumes are an error
    naming `source`. `slice_axis` defaults to the axis with the largest spacing."""
    array = volume.array.astype(np.float32)
    if not np.isfinite(array).all():
        raise IsrnetError(f"{source}: contains NaN or Inf voxels; fix or remove this case")
    if not array.any():
        raise IsrnetError(f"{source}: all voxels are zero; remove this case")
    axis = slice_axis_of(volume.spacing) if slice_axis is None else slice_axis
    if array.shape[axis] < MIN_SLICES:
        raise IsrnetError(f"{source}: only {array.shape[axis]} slices along the slice axis (array axis "
                          f"{axis}); at least {MIN_SLICES} are needed")
    mask = foreground_mask(array)
    return {"shape": list(array.shape), "spacing": list(volume.spacing),
            "origin": volume.origin.tolist(), "direction": volume.direction.tolist(),
            "slice_axis": axis, "in_plane_spacing": [volume.spacing[a] for a in in_plane_axes(axis)],
            "slice_spacing": volume.spacing[axis], "anisotropy": factor_of(volume.spacing, axis),
            "near_isotropic": is_near_isotropic(volume.spacing, axis),
            "intensity": intensity_statistics(array, mask), "foreground_bbox": bounding_box(mask)}


def volume_fingerprint(path: Path, case: str, thickness_mm: float | None = None, family: str | None = None,
                       dicom_thickness_mm: float | None = None, with_profile: bool = True) -> dict:
    """Fingerprint of every 3D volume in one image file (4D files give one entry per volume).

    `thickness_mm` and `family` are dataset.json's word for this case, `dicom_thickness_mm` a DICOM SliceThickness
    that isr_convert kept; `with_profile` (target datasets) decides each volume's slice profile."""
    volumes = read_volumes(path)
    entries = {}
    for index, volume in enumerate(volumes):
        name = case if len(volumes) == 1 else f"{case}_t{index:03d}"
        entry = volume_entry(volume, path)
        entries[name] = {"file": str(path), "volume_index": index, "n_volumes": len(volumes), **entry,
                         "slice_profile": _slice_profile(volume, entry["slice_axis"], thickness_mm, family,
                                                         dicom_thickness_mm,
                                                         with_profile and not entry["near_isotropic"])}
    return entries


def _slice_profile(volume: Volume, axis: int, thickness_mm: float | None, family: str | None,
                   dicom_thickness_mm: float | None, decide: bool) -> dict | None:
    if not decide:
        return None
    stack = slices_first(volume, axis)
    return decide_slice_profile(stack.array, stack.spacing, volume.dicom_thickness_mm or dicom_thickness_mm,
                                thickness_mm, family).as_record()


def clip_fingerprint(path: Path, case: str) -> dict:
    frames = read_clip(path)
    return {case: {"file": str(path), "frames": int(frames.shape[0]), "height": int(frames.shape[1]),
                   "width": int(frames.shape[2]), "mean": float(frames.mean()), "std": float(frames.std())}}


def _one_case(item: tuple[str, Path, str, float | None, str | None, float | None]) -> dict:
    case, path, kind, thickness, family, dicom_thickness = item
    if kind == DatasetKind.VIDEO:
        return clip_fingerprint(path, case)
    return volume_fingerprint(path, case, thickness, family, dicom_thickness, with_profile=kind == DatasetKind.TARGET)


def extract_fingerprint(dataset: str, workers: int = 2) -> dict:
    """Compute and save the fingerprint of a raw dataset; returns it."""
    info, cases = datasets.training_cases(dataset)
    items = [(case, path, info.kind, info.thickness_for(case), info.family_for(case), info.dicom_thickness_for(case))
             for case, path in cases.items()]
    results = map_cases(_one_case, items, workers, f"fingerprint {dataset}")
    raise_collected(results, "fingerprint extraction")
    merged: dict[str, dict] = {}
    folder = datasets.raw_dataset_folder(dataset)
    for entry in results:
        for name, case in entry.items():
            case["file"] = Path(case["file"]).relative_to(folder).as_posix()  # the raw folder may move
            if name in merged:  # a 4D file's 'case_t000' and a 3D file of that name
                raise IsrnetError(f"{merged[name]['file']} and {case['file']} both give case '{name}'; "
                                  f"rename one")
            merged[name] = case
    fingerprint = {"dataset": dataset, "kind": str(info.kind), "cases": merged}
    save_json(fingerprint, fingerprint_path(dataset))
    return fingerprint


def fingerprint_path(dataset: str) -> Path:
    return paths.preprocessed_folder() / dataset / FINGERPRINT_FILE
