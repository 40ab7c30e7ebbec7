"""Preprocessing: the one path from a volume to the network's array, used by training and prediction alike.

`prepare_volume` (volume + slice axis + normalisation [+ crop box] -> slices-first normalised array and an
`Inversion`) is what `isr_preprocess` saves for training and what `isr_predict` feeds the network; `restore`
inverts it exactly. The slice axis is never resampled. Arrays are plain `.npy` (memory-mappable, no codec
dependency); properties are JSON. The per-case decisions (the slice profile) stay in plans.json and are joined
to the arrays when training loads them, so `isr_train --set cases.NAME.slice_profile.family=rect` works.
A time series (4D image) is one case: its frames, with one crop and each normalised as prediction normalises it, are
written one at a time into one array [T, Z, Y, X] (`preprocess_series_case`); properties say `frames` (1 for 3D
cases).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from numpy.lib.format import dtype_to_descr, write_array_header_1_0

from isrnet import paths
from isrnet.datasets import raw_dataset_folder
from isrnet.acquisition.noise import volume_noise_sigma
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.imageio import Volume
from isrnet.imageio.reader_writer import open_frames
from isrnet.imageio.geometry import transpose_for
from isrnet.imageio.video import read_clip
from isrnet.intensity import DEFAULT_NORMALISATION, normalisation_range, normalise
from isrnet.utilities.files import atomic_file, load_json, save_array, save_json
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
    """Preprocess one 3D volume of a target (slice axis first) or hr_mr (axes kept) dataset (an entry of an older
    fingerprint may name one frame of a 4D file by `volume_index`)."""
    with open_frames(raw_file(dataset, fingerprint_case)) as source:
        volume = source.frame(fingerprint_case.get("volume_index", 0))
    slice_axis = preprocessing_slice_axis(plans, case)
    box = crop_box(fingerprint_case["foreground_bbox"], fingerprint_case["shape"], slice_axis)
    array, inversion = prepare_volume(volume, slice_axis, plans.normalisation, box)
    properties = _properties(case, plans, volume, inversion, 1)
    if plans.is_target:
        properties["noise_sigma"] = normalised_noise_sigma(volume, inversion)
    return array, properties


def normalised_noise_sigma(volume: Volume, inversion: Inversion) -> float:
    """The volume's noise sigma (from its whole background, before the crop) in the prepared array's units."""
    return volume_noise_sigma(volume.array) / inversion.scale


def _properties(case: str, plans: Plans, volume: Volume, inversion: Inversion, frames: int) -> dict:
    return {"case": case, "kind": str(plans.kind), "slice_axis": preprocessing_slice_axis(plans, case),
            "normalisation": plans.normalisation,
            "spacing": [volume.spacing[a] for a in inversion.transpose_forward],
            "origin": volume.origin.tolist(), "direction": volume.direction.tolist(), **asdict(inversion),
            "frames": frames}


def preprocessing_slice_axis(plans: Plans, case: str) -> int | None:
    """The slice axis a case is preprocessed with: its plan's for target datasets, none (axes kept) otherwise."""
    return plans.cases[case].slice_axis if plans.is_target else None


def preprocess_series_case(dataset: str, case: str, fingerprint_case: dict, plans: Plans, target: Path) -> dict:
    """Preprocess a time series frame by frame into one array [T, ...] at `target` and return its properties.

    Frame t is what `prepare_volume` makes of it with the fingerprint's crop box (which holds every frame's
    foreground) and its own normalisation range, as prediction normalises each frame: a network trained here sees
    frames as it will be given them (the b=0 and diffusion-weighted volumes of a dwi series alike). The properties'
    inversion is the first frame's; `noise_sigma` is the root mean square of the frames' normalised noise levels.
    One pass, one frame in memory at a time."""
    slice_axis = preprocessing_slice_axis(plans, case)
    box = crop_box(fingerprint_case["foreground_bbox"], fingerprint_case["shape"], slice_axis)
    with open_frames(raw_file(dataset, fingerprint_case)) as source:
        first, first_inversion, sigmas = None, None, []
        with atomic_file(target) as handle:
            for index, volume in enumerate(source):
                array, inversion = prepare_volume(volume, slice_axis, plans.normalisation, box)
                if first is None:
                    first, first_inversion = volume, inversion
                    write_array_header_1_0(handle, {"descr": dtype_to_descr(np.dtype(np.float32)),
                                                    "fortran_order": False, "shape": (len(source), *array.shape)})
                elif volume.shape != first.shape:
                    raise IsrnetError(f"{source.name}: frame {index + 1} has shape {volume.shape}, the first "
                                      f"{first.shape}; every frame of a time series needs the same grid")
                handle.write(np.ascontiguousarray(array, dtype=np.float32).tobytes())
                if plans.is_target:
                    sigmas.append(normalised_noise_sigma(volume, inversion))
        properties = {**_properties(case, plans, first, first_inversion, len(source)),
                      "time": source.time.as_record()}
    if plans.is_target:
        properties["noise_sigma"] = float(np.sqrt(np.mean(np.square(sigmas))))
    return properties


def _preprocess_one(item: tuple, dataset: str, plans: Plans, output: Path) -> str:
    case, fingerprint_case = item
    if plans.kind == DatasetKind.VIDEO:
        frames = read_clip(raw_file(dataset, fingerprint_case))
        array = np.round(frames * 255).astype(np.uint8)
        properties = {"case": case, "kind": "video", "frames": int(array.shape[0]), "dtype": "uint8"}
        save_array(array, output / "data" / f"{case}.npy")
    elif fingerprint_case.get("frames", 1) > 1:
        properties = preprocess_series_case(dataset, case, fingerprint_case, plans, output / "data" / f"{case}.npy")
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

    A target dataset's time series is one case [T, Z, Y, X] (the ssft sampler draws its frames); the frames of
    an hr_mr dataset's time series are cases of their own (views of one memory map), as the mrft sampler takes
    3D volumes. Preprocessing decisions (which cases, slice axis, normalisation, frames) must match the plans; the
    per-case decision that only the sampler uses (the slice profile record) is taken from the plans as they are
    now.
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
        _check_as_planned(dataset, case, properties, plans)
        if plan.slice_profile is not None:
            properties["slice_profile"] = plan.slice_profile.plan_record()
        array = np.load(folder / "data" / f"{case}.npy", mmap_mode="r")
        if array.ndim == 4 and not plans.is_target:
            cases += [(array[index], {**properties, "frame": index}) for index in range(array.shape[0])]
        else:
            cases.append((array, properties))
    if not cases:
        raise IsrnetError(f"dataset {dataset}: the plans skip every preprocessed case; nothing to train on")
    return cases


def _check_as_planned(dataset: str, case: str, properties: dict, plans: Plans) -> None:
    """An error saying to preprocess again when a preprocessing decision of the plans changed since."""
    plan = plans.cases[case]
    planned = {"normalisation": plans.normalisation}
    if plans.is_target:
        planned |= {"slice_axis": plan.slice_axis, "frames": plan.frames}
    for key, value in planned.items():
        found = properties.get(key, 1 if key == "frames" else value)  # older properties: 3D, and as planned
        if found != value:
            raise IsrnetError(f"case {case} was preprocessed with {key} {found!r}, the plans say "
                              f"{value!r}; preprocess again: isr_plan_and_preprocess -d {dataset} (and give "
                              f"the change there with --set)")
