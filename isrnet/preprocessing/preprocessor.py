"""Preprocessing: slice axis first, crop to foreground, normalise, save. Never resamples the slice axis.

Each step is recorded in the case's properties so `restore` can invert it. Arrays are plain `.npy`
(memory-mappable, no codec dependency); properties are JSON.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.imageio import read_volumes
from isrnet.imageio.video import read_clip
from isrnet.utilities.files import load_json, save_array, save_json
from isrnet.utilities.parallel import map_cases, raise_collected

IN_PLANE_MARGIN = 4  # voxels kept around the foreground box in-plane (context for the network)
DONE_FILE = "preprocessing_done.json"


def crop_box(box: list[list[int]], shape: list[int], slice_axis: int | None) -> list[list[int]]:
    """Foreground box with an in-plane margin; the slice axis keeps all slices."""
    out = []
    for axis, ((start, stop), size) in enumerate(zip(box, shape)):
        if axis == slice_axis:
            out.append([0, size])
        else:
            out.append([max(0, start - IN_PLANE_MARGIN), min(size, stop + IN_PLANE_MARGIN)])
    return out


def normalise(array: np.ndarray, low: float, high: float) -> tuple[np.ndarray, float, float]:
    """(array - low) / (high - low): robust range to about [0, 1], no clipping (so it inverts exactly)."""
    scale = high - low if high > low else 1.0
    return ((array.astype(np.float32) - low) / scale).astype(np.float32), float(low), float(scale)


def normalise_percentiles(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """`normalise` with the array's own 0.5th and 99.5th percentiles (as the fingerprint records them)."""
    low, high = np.percentile(array, [0.5, 99.5])
    return normalise(array, float(low), float(high))


def preprocess_volume_case(case: str, fingerprint_case: dict, case_plan: dict, kind: str) -> tuple[np.ndarray, dict]:
    """Preprocess one 3D volume; returns (array, properties)."""
    volume = read_volumes(fingerprint_case["file"])[fingerprint_case["volume_index"]]
    slice_axis = case_plan["slice_axis"] if kind == "target" else None
    box = crop_box(fingerprint_case["foreground_bbox"], fingerprint_case["shape"], slice_axis)
    cropped = volume.array[tuple(slice(a, b) for a, b in box)]
    forward = case_plan["transpose_forward"] if kind == "target" else [0, 1, 2]  # hr_mr: any axis is used
    stats = fingerprint_case["intensity"]
    array, offset, scale = normalise(np.transpose(cropped, forward), stats["p00_5"], stats["p99_5"])
    properties = {"case": case, "kind": kind, "original_shape": list(volume.shape), "crop_box": box,
                  "transpose_forward": forward, "transpose_backward": [int(i) for i in np.argsort(forward)],
                  "spacing": [volume.spacing[a] for a in forward], "offset": offset, "scale": scale,
                  "background": stats["min"], "origin": volume.origin.tolist(),
                  "direction": volume.direction.tolist()}
    for key in ("slice_thickness", "factor", "slice_profile"):
        if key in case_plan:
            properties[key] = case_plan[key]
    return array, properties


def restore(array: np.ndarray, properties: dict) -> np.ndarray:
    """Invert preprocessing: intensity scale, axis order and crop (outside the crop: background)."""
    values = array.astype(np.float32) * properties["scale"] + properties["offset"]
    values = np.transpose(values, properties["transpose_backward"])
    full = np.full(properties["original_shape"], properties["background"], dtype=np.float32)
    full[tuple(slice(a, b) for a, b in properties["crop_box"])] = values
    return full


def _preprocess_one(item: tuple, output: Path) -> str:
    case, fingerprint_case, case_plan, kind = item
    if kind == "video":
        frames = read_clip(fingerprint_case["file"])
        array = np.round(frames * 255).astype(np.uint8)
        properties = {"case": case, "kind": kind, "frames": int(array.shape[0]), "dtype": "uint8"}
    else:
        array, properties = preprocess_volume_case(case, fingerprint_case, case_plan, kind)
    save_array(array, output / "data" / f"{case}.npy")
    save_json(properties, output / "properties" / f"{case}.json")
    return case


def preprocess_dataset(dataset: str, fingerprint: dict, plans: dict, workers: int = 2) -> Path:
    """Preprocess every non-skipped case; returns the dataset's preprocessed folder."""
    output = paths.preprocessed_folder() / dataset
    (output / DONE_FILE).unlink(missing_ok=True)
    items = [(case, fingerprint["cases"][case], plan, plans["kind"])
             for case, plan in plans["cases"].items() if not plan["skip"]]
    results = map_cases(partial(_preprocess_one, output=output), items, workers, f"preprocess {dataset}")
    raise_collected(results, "preprocessing")
    save_json({"cases": [r for r in results], "plans_dataset": plans["dataset"]}, output / DONE_FILE)
    return output


def preprocessed_cases(dataset: str) -> list[str]:
    """Cases preprocessed for `dataset`; a clear error names the command when there are none."""
    done = paths.preprocessed_folder() / dataset / DONE_FILE
    if not done.is_file():
        raise IsrnetError(f"dataset {dataset} is not preprocessed; run: isr_plan_and_preprocess -d {dataset}")
    return list(load_json(done)["cases"])
