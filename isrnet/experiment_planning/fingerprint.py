"""Dataset fingerprint: per-case geometry, slice axis, slice profile and intensity statistics.

The slice profile of a target case (thickness, family, their sources and a confidence) is decided by
`acquisition.slice_profile.decide_slice_profile`: dataset.json, then a plausible DICOM SliceThickness, then an
estimate from the volume itself.

One entry per raw image, named by its case. A time series (a 4D image: cine, fMRI, diffusion) is one case read a
frame at a time (`imageio.reader_writer.open_frames`): its entry has `frames` (3D images: 1) and `time` (the
`TimeAxis` record), the geometry every frame shares, statistics and a foreground box over all frames, and one slice
profile. Fingerprints written before (one entry `<case>_t000` per frame, with `volume_index` and `n_volumes`) are
still preprocessed as they were.

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
from isrnet.imageio.geometry import (MIN_SLICES, factor_of, in_plane_axes, is_near_isotropic, slice_axis_of,
                                    slices_first)
from isrnet.imageio.reader_writer import open_frames
from isrnet.imageio.time_series import FrameSource
from isrnet.imageio.video import read_clip
from isrnet.imageio.volume import Volume
from isrnet.intensity import bounding_box, foreground_mask
from isrnet.utilities.files import save_json
from isrnet.utilities.parallel import map_cases, raise_collected

FINGERPRINT_FILE = "dataset_fingerprint.json"


def intensity_statistics(array: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    flat = array.ravel()
    return _statistics(flat, array[mask] if mask.any() else flat, float(array.min()), float(array.max()))


def _statistics(values: np.ndarray, foreground: np.ndarray, low: float, high: float) -> dict[str, float]:
    """The intensity record from all `values`, the `foreground` ones and the exact extremes."""
    p = np.percentile(values, [0.5, 99.5, 99.9])
    return {"min": low, "max": high, "p00_5": float(p[0]),
            "p99_5": float(p[1]), "p99_9": float(p[2]), "foreground_mean": float(foreground.mean()),
            "foreground_std": float(foreground.std()),
            "foreground_p00_5": float(np.percentile(foreground, 0.5)),
            "foreground_p99_5": float(np.percentile(foreground, 99.5))}


def frame_sample(values: np.ndarray, index: int, frames: int) -> np.ndarray:
    """Frame `index`'s share of a time series' pooled sample: every `frames`-th of its `values`, starting at
    `index`, so that the frames together give as many values as one frame has (all of them for a 3D image)."""
    return values.ravel()[index::frames]


def _checked_array(volume: Volume, source: str | Path, axis: int) -> np.ndarray:
    """The volume's voxels as float32; NaN/Inf, all-zero and too few slices are an error naming `source`."""
    array = volume.array.astype(np.float32)
    if not np.isfinite(array).all():
        raise IsrnetError(f"{source}: contains NaN or Inf voxels; fix or remove this case")
    if not array.any():
        raise IsrnetError(f"{source}: all voxels are zero; remove this case")
    if array.shape[axis] < MIN_SLICES:
        raise IsrnetError(f"{source}: only {array.shape[axis]} slices along the slice axis (array axis "
                          f"{axis}); at least {MIN_SLICES} are needed")
    return array


def _geometry(volume: Volume, axis: int) -> dict:
    return {"shape": list(volume.shape), "spacing": list(volume.spacing),
            "origin": volume.origin.tolist(), "direction": volume.direction.tolist(),
            "slice_axis": axis, "in_plane_spacing": [volume.spacing[a] for a in in_plane_axes(axis)],
            "slice_spacing": volume.spacing[axis], "anisotropy": factor_of(volume.spacing, axis),
            "near_isotropic": is_near_isotropic(volume.spacing, axis)}


def volume_entry(volume: Volume, source: str | Path, slice_axis: int | None = None) -> dict:
    """The geometry and intensity fingerprint of one 3D volume (no slice profile); bad volumes are an error
    naming `source`. `slice_axis` defaults to the axis with the largest spacing."""
    axis = slice_axis_of(volume.spacing) if slice_axis is None else slice_axis
    array = _checked_array(volume, source, axis)
    mask = foreground_mask(array)
    return {**_geometry(volume, axis), "intensity": intensity_statistics(array, mask),
            "foreground_bbox": bounding_box(mask)}


class PooledFrames:
    """The intensity statistics and foreground box of a time series, gathered one frame at a time.

    Every frame is checked as a 3D volume is. The minimum, maximum and foreground box (the union of the frames'
    boxes, so one crop keeps every frame's anatomy) are exact; the percentiles, mean and standard deviation come
    from a pooled sample of one frame's size with an equal share of every frame (`frame_sample`), so the sample
    does not grow with the series and every frame counts alike."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.low, self.high = np.inf, -np.inf
        self.values: list[np.ndarray] = []
        self.foreground: list[np.ndarray] = []
        self.box: list[list[int]] | None = None

    def add(self, index: int, volume: Volume, source: str, axis: int) -> None:
        array = _checked_array(volume, source, axis)
        mask = foreground_mask(array)
        self.low, self.high = min(self.low, float(array.min())), max(self.high, float(array.max()))
        self.values.append(frame_sample(array, index, self.frames).copy())
        self.foreground.append(frame_sample(array[mask], index, self.frames).copy())
        box = bounding_box(mask)
        self.box = box if self.box is None else [[min(a[0], b[0]), max(a[1], b[1])] for a, b in zip(self.box, box)]

    def statistics(self) -> dict[str, float]:
        values, foreground = np.concatenate(self.values), np.concatenate(self.foreground)
        return _statistics(values, foreground if foreground.size else values, self.low, self.high)


def volume_fingerprint(path: Path, case: str, thickness_mm: float | None = None, family: str | None = None,
                       dicom_thickness_mm: float | None = None, with_profile: bool = True) -> dict:
    """{case: fingerprint} of one image file: a 3D volume, or a time series (4D) as one case with `frames`.

    `thickness_mm` and `family` are dataset.json's word for this case, `dicom_thickness_mm` a DICOM SliceThickness
    that isr_convert kept; `with_profile` (target datasets) decides the case's slice profile."""
    with open_frames(path) as source:
        if len(source) > 1:
            return {case: _series_entry(source, path, thickness_mm, family, dicom_thickness_mm, with_profile)}
        volume = source.frame(0)
    entry = volume_entry(volume, path)
    profile = _slice_profile(volume, entry["slice_axis"], thickness_mm, family, dicom_thickness_mm,
                             with_profile and not entry["near_isotropic"])
    return {case: {"file": str(path), "frames": 1, **entry, "slice_profile": profile}}


def _series_entry(source: FrameSource, path: Path, thickness_mm: float | None, family: str | None,
                  dicom_thickness_mm: float | None, with_profile: bool) -> dict:
    """The fingerprint of a time series read frame by frame: the first frame's geometry (every frame must
    share it), statistics pooled over the frames (`PooledFrames`) and one slice profile, decided on the first
    frame: the frames share the acquisition, and the first is where diffusion series keep their b=0 volume."""
    frames = len(source)
    pooled, entry, profile = PooledFrames(frames), {}, None
    for index, volume in enumerate(source):
        where = f"{path} (frame {index + 1} of {frames})"
        if index == 0:
            entry = _geometry(volume, slice_axis_of(volume.spacing))
            profile = _slice_profile(volume, entry["slice_axis"], thickness_mm, family, dicom_thickness_mm,
                                     with_profile and not entry["near_isotropic"])
        elif list(volume.shape) != entry["shape"]:
            raise IsrnetError(f"{where}: shape {list(volume.shape)}, the first frame's {entry['shape']}; every "
                              f"frame of a time series needs the same grid")
        pooled.add(index, volume, where, entry["slice_axis"])
    return {"file": str(path), "frames": frames, "time": source.time.as_record(), **entry,
            "intensity": pooled.statistics(), "foreground_bbox": pooled.box, "slice_profile": profile}


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
            merged[name] = case
    fingerprint = {"dataset": dataset, "kind": str(info.kind), "cases": merged}
    save_json(fingerprint, fingerprint_path(dataset))
    return fingerprint


def fingerprint_path(dataset: str) -> Path:
    return paths.preprocessed_folder() / dataset / FINGERPRINT_FILE
