"""Preprocessing: the one path from a volume to the network's array, used by training and prediction alike.

`prepare_volume` (volume + slice axis + normalisation [+ crop box] -> slices-first normalised array and an
`Inversion`) is what `isr_preprocess` saves for training and what `isr_predict` feeds the network; `restore`
inverts it exactly. The slice axis is never resampled. Arrays are plain `.npy` (memory-mappable, no codec
dependency); properties are JSON. The per-case decisions (the slice profile) stay in plans.json and are joined
to the arrays when training loads them, so `isr_train --set cases.NAME.slice_profile.family=rect` works.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from isrnet import paths
from isrnet.datasets import raw_dataset_folder
from isrnet.acquisition.noise import volume_noise_sigma
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.imageio import Volume, read_volumes
from isrnet.imageio.geometry import transpose_for
from isrnet.imageio.video import read_clip
from isrnet.intensity import DEFAULT_NORMALISATION, normalisation_range, normalise
from isrnet.utilities.files import load_json, save_array, save_json
from isrnet.utilities.parallel import map_cases, raise_collected
from isrnet.stages import DatasetKind

IN_PLANE_MARGIN = 4  # voxels kept around the foreground box in-plane (context for the network)
DONE_FILE = "preprocessing_done.json"


@dataclass
class Inversion:
    """What `restore` needs to map a prepared array back onto the original volume."""
    transpose_backward: list[int]
    offset: float
    scale: float
    original_shape: list[int]
    crop_box: list[list[int]]
    background: float

    @property
    def transpose_forward(self) -> list[int]:
        """The axis order of the prepared array (its axis k is the volume's axis transpose_forward[k])."""
        return [int(i) for i in np.argsort(self.transpose_backward)]

    def intensities(self, array: np.ndarray) -> np.ndarray:
        """Normalised values back to the volume's intensities."""
        return array * self.scale + self.offset


def crop_box(box: list[list[int]], shape: list[int], slice_axis: int | None) -> list[list[int]]:
    """Foreground box with an in-plane margin; the slice axis keeps all slices."""
    out = []
    for axis, ((start, stop), size) in enumerate(zip(box, shape)):
        if axis == slice_axis:
            out.append([0, size])
        else:
            out.append([max(0, start - IN_PLANE_MARGIN), min(size, stop + IN_PLANE_MARGIN)])
    return out


def prepare_volume(volume: Volume, slice_axis: int | None, normalisation: str = DEFAULT_NORMALISATION,
                   box: list[list[int]] | None = None) -> tuple[np.ndarray, Inversion]:
    """Crop (to `box`, default: nothing), move `slice_axis` first (None: keep the axis order) and normalise with
    the robust range of the whole volume. Returns (float32 array, its inversion)."""
    source = volume.array.astype(np.float32)
    low, high = normalisation_range(source, normalisation)
    box = box or [[0, size] for size in source.shape]
    cropped = source[tuple(slice(a, b) for a, b in box)]
    forward = transpose_for(slice_axis)[0] if slice_axis is not None else [0, 1, 2]
    array, offset, scale = normalise(np.transpose(cropped, forward), low, high)
    inversion = Inversion([int(i) for i in np.argsort(forward)], offset, scale, list(source.shape), box,
                          float(source.min()))
    return array, inversion


def restore(array: np.ndarray, inversion: Inversion | dict) -> np.ndarray:
    """Invert `prepare_volume`: intensities, axis order and crop (outside the crop: the volume's minimum)."""
    if isinstance(inversion, dict):
        inversion = Inversion(**{key: inversion[key] for key in Inversion.__dataclass_fields__})
    values = np.transpose(inversion.intensities(array.astype(np.float32)), inversion.transpose_backward)
    full = np.full(inversion.original_shape, inversion.background, dtype=np.float32)
    full[tuple(slice(a, b) for a, b in inversion.crop_box)] = values
    return full


def raw_file(dataset: str, fingerprint_case: dict) -> Path:
    """The raw image of a fingerprint entry (stored relative to the raw dataset folder, so it may move)."""
    path = raw_dataset_folder(dataset) / fingerprint_case["file"]
    if not path.exists():
        raise IsrnetError(f"{path} (named by the fingerprint) does not exist; run isr_plan_and_preprocess -d "
                          f"{dataset} again")
    return path


def preprocess_volume_case(dataset: str, case: str, fingerprint_case: dict, plans: Plans) -> tuple[np.ndarray, dict]:
    """Preprocess one 3D volume of a target (slice axis first) or hr_mr (axes kept) dataset."""
    volume = read_volumes(raw_file(dataset, fingerprint_case))[fingerprint_case["volume_index"]]
    slice_axis = plans.cases[case].slice_axis if plans.is_target else None
    box = crop_box(fingerprint_case["foreground_bbox"], fingerprint_case["shape"], slice_axis)
    array, inversion = prepare_volume(volume, slice_axis, plans.normalisation, box)
    properties = {"case": case, "kind": str(plans.kind), "slice_axis": slice_axis,
                  "normalisation": plans.normalisation,
                  "spacing": [volume.spacing[a] for a in inversion.transpose_forward],
                  "origin": volume.origin.tolist(), "direction": volume.direction.tolist(), **asdict(inversion)}
    if plans.is_target:
        properties["noise_sigma"] = normalised_noise_sigma(volume, inversion)
    return array, properties


def normalised_noise_sigma(volume: Volume, inversion: Inversion) -> float:
    """The volume's noise sigma (from its whole background, before the crop) in the prepared array's units."""
    return volume_noise_sigma(volume.array) / inversion.scale


def _preprocess_one(item: tuple, dataset: str, plans: Plans, output: Path) -> str:
    case, fingerprint_case = item
    if plans.kind == DatasetKind.VIDEO:
        frames = read_clip(raw_file(dataset, fingerprint_case))
        array = np.round(frames * 255).astype(np.uint8)
        properties = {"case": case, "kind": "video", "frames": int(array.shape[0]), "dtype": "uint8"}
    else:
        array, properties = preprocess_volume_case(dataset, case, fingerprint_case, plans)
    save_array(array, output / "data" / f"{case}.npy")
    save_json(properties, output / "properties" / f"{case}.json")
    return case


def preprocess_dataset(dataset: str, fingerprint: dict, plans: Plans, workers: int = 2) -> Path:
    """Preprocess every non-skipped case; returns the dataset's preprocessed folder."""
    output = paths.preprocessed_folder() / dataset
    (output / DONE_FILE).unlink(missing_ok=True)
    items = [(case, fingerprint["cases"][case]) for case, plan in plans.cases.items() if not plan.skip]
    results = map_cases(partial(_preprocess_one, dataset=dataset, plans=plans, output=output), items, workers,
                        f"preprocess {dataset}")
    raise_collected(results, "preprocessing")
    save_json({"cases": [r for r in results], "plans_dataset": plans.dataset}, output / DONE_FILE)
    return output


def preprocessed_cases(dataset: str) -> list[str]:
    """Cases preprocessed for `dataset`; a clear error names the command when there are none."""
    done = paths.preprocessed_folder() / dataset / DONE_FILE
    if not done.is_file():
        raise IsrnetError(f"dataset {dataset} is not preprocessed; run: isr_plan_and_preprocess -d {dataset}")
    return list(load_json(done)["cases"])


def load_training_cases(dataset: str, plans: Plans) -> list[tuple[np.ndarray, dict]]:
    """(memory-mapped array, properties + the plan's per-case decisions) of every preprocessed case.

    Preprocessing decisions (which cases, slice axis, normalisation) must match the plans; the per-case
    decision that only the sampler uses (the slice profile record) is taken from the plans as they are now.
    """
    folder = paths.preprocessed_folder() / dataset
    cases = []
    for case in preprocessed_cases(dataset):
        plan = plans.cases.get(case)
        properties = load_json(folder / "properties" / f"{case}.json")
        if plan is None:
            raise IsrnetError(f"case {case} was preprocessed but the plans lack it; run: "
                              f"isr_plan_and_preprocess -d {dataset}")
        if plan.skip:  # skipped since preprocessing (e.g. isr_train --set cases.NAME.skip=true)
            continue
        if "normalization" in properties:  # preprocessed before the British spelling
            properties["normalisation"] = properties.pop("normalization")
        planned = {"slice_axis": plan.slice_axis, "normalisation": plans.normalisation}
        for key, value in planned.items():
            if key in properties and properties[key] != value and (key != "slice_axis" or plans.is_target):
                raise IsrnetError(f"case {case} was preprocessed with {key} {properties[key]!r}, the plans say "
                                  f"{value!r}; preprocess again: isr_plan_and_preprocess -d {dataset} (and give "
                                  f"the change there with --set)")
        if plan.slice_profile is not None:
            properties["slice_profile"] = plan.slice_profile.plan_record()
        cases.append((np.load(folder / "data" / f"{case}.npy", mmap_mode="r"), properties))
    if not cases:
        raise IsrnetError(f"dataset {dataset}: the plans skip every preprocessed case; nothing to train on")
    return cases
