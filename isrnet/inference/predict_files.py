"""File-level prediction: find the inputs, read, super-resolve every 3D volume, write atomically with a JSON
sidecar. `path_prediction.py` runs this over many inputs (parts, process pool)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from isrnet import __version__
from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.imageio import read_volumes, write_volumes
from isrnet.imageio.geometry import input_slice_positions, slice_axis_of
from isrnet.imageio.formats import FLOAT_WRITABLE, IMAGE_ENDINGS, image_ending, is_dicom_folder
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.utilities.files import save_json

def find_inputs(source: Path) -> list[Path]:
    """A file, a DICOM series folder, or a folder of files and DICOM series folders."""
    if not source.exists():
        raise IsrnetError(f"-i {source}: no such file or folder")
    if source.is_file() or is_dicom_folder(source):
        return [source]
    inputs = [p for p in sorted(source.iterdir()) if not p.name.startswith(".")
              and ((p.is_file() and image_ending(p)) or (p.is_dir() and is_dicom_folder(p)))]
    if not inputs:
        raise IsrnetError(f"-i {source}: holds no images ({', '.join(IMAGE_ENDINGS)}) or DICOM series folders")
    return inputs


def output_path(source: Path, output_folder: Path) -> Path:
    """Same name as the input; NIfTI unless the input's format holds float voxels."""
    ending = image_ending(source) if source.is_file() else None
    if ending in (".nhdr", ".mhd"):  # detached headers: write single-file equivalents
        ending = {".nhdr": ".nrrd", ".mhd": ".mha"}[ending]
    if ending is None or ending not in FLOAT_WRITABLE:
        ending = ".nii.gz"
    return output_folder / f"{case_name(source) if source.is_dir() else source.name[: -len(image_ending(source))]}{ending}"


def part_of(inputs: list[Path], num_parts: int, part_id: int) -> list[Path]:
    """Every num_parts-th input starting at part_id: the parts are disjoint and cover all inputs."""
    if not 0 <= part_id < num_parts:
        raise IsrnetError(f"-part_id must be in 0 .. {num_parts - 1}")
    return inputs[part_id::num_parts]


def _cast(array: np.ndarray, dtype: str) -> np.ndarray:
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


def predict_file(predictor: Predictor, source: Path, output_folder: Path, requested: PredictionSettings,
                 dtype: str | None, progress=None) -> Path:
    """Super-resolve one input (3D or 4D) and write it plus `<name>.json`; returns the output path.

    What `requested` leaves open (factor, thickness, slice axis) comes from the model's plans for this case."""
    start = time.time()
    settings = predictor.settings_for(case_name(source), requested)
    volumes = read_volumes(source)
    target = output_path(source, output_folder)
    results = [predictor.predict(volume, settings, progress=progress) for volume in volumes]
    out_dtype = dtype or "float32"
    results = [r.with_array(_cast(r.array, out_dtype)) for r in results]
    write_volumes(results, target)
    axis = slice_axis_of(volumes[0].spacing) if settings.slice_axis is None else settings.slice_axis
    sidecar = {"input": str(source), "output": target.name, "model": predictor.description,
               "factor": volumes[0].spacing[axis] / results[0].spacing[axis],
               "input_spacing": list(volumes[0].spacing), "output_spacing": list(results[0].spacing),
               "slice_thickness_mm": settings.slice_thickness or volumes[0].slice_thickness or volumes[0].spacing[axis],
               "slice_axis": axis, "input_positions": input_slice_positions(volumes[0], axis).round(4).tolist(),
               "settings": asdict(settings), "volumes": len(volumes), "dtype": out_dtype,
               "seconds": round(time.time() - start, 2), "isrnet_version": __version__}
    sidecar_path = target.with_name(target.name[: -len(image_ending(target))] + ".json")
    save_json(sidecar, sidecar_path)
    return target
