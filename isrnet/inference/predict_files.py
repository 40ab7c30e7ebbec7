"""File-level prediction: find the inputs, read, super-resolve every 3D volume, write atomically with a JSON
sidecar. `path_prediction.py` runs this over many inputs (parts, process pool)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from isrnet import __version__
from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, read_volumes, write_volumes
from isrnet.imageio.dicom_series import read_identity, write_dicom_series
from isrnet.imageio.geometry import input_slice_positions
from isrnet.imageio.formats import (FLOAT_WRITABLE, IMAGE_ENDINGS, OUTPUT_FORMATS, image_ending, is_dicom_folder,
                                    sidecar_of)
from isrnet.inference.adaptation import ADAPTED_FOLDER, AdaptationOptions, adapt_to_case
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


@dataclass
class OutputFormat:
    """How outputs are written: `nifti` (NIfTI, or the input's float-capable format), `dicom` (a derived series
    per input: identity from a DICOM input, else from `dicom_reference`), or `same` (DICOM for DICOM input)."""
    format: str = "nifti"
    dicom_reference: Path | None = None  # the series whose identity a DICOM output of a non-DICOM input takes
    anonymise: bool = False  # DICOM output without identity (new UIDs and patient ID, no names or dates)

    def __post_init__(self) -> None:
        self.dicom_reference = Path(self.dicom_reference) if self.dicom_reference is not None else None
        if self.format not in OUTPUT_FORMATS:
            raise IsrnetError(f"unknown output format '{self.format}'; use one of {', '.join(OUTPUT_FORMATS)}")
        if self.anonymise and self.format == "nifti":
            raise IsrnetError("--anonymise applies to DICOM output; add --output-format dicom (or same)")
        if self.dicom_reference is not None and not is_dicom_folder(self.dicom_reference):
            raise IsrnetError(f"--dicom-reference {self.dicom_reference}: not a folder holding a DICOM series")

    def identity_source(self, source: Path) -> Path | None:
        """The series whose identity the output of `source` takes, or None for NIfTI-style output."""
        if source.is_dir() and self.format in ("dicom", "same"):
            return source
        if self.format == "dicom":
            if self.dicom_reference is None:
                raise IsrnetError(f"{source.name} is not DICOM: a DICOM output needs --dicom-reference SERIES_FOLDER "
                                  f"(the series whose patient and study it belongs to), or use --output-format same")
            return self.dicom_reference
        return None


def _write_dicom(result: Volume, source: Path, output_folder: Path, identity_source: Path, output: OutputFormat,
                 axis: int, factor: float, model: str) -> Path:
    identity = read_identity(identity_source)
    target = output_folder / case_name(source)
    protected = [p.resolve() for p in (source, identity_source)]
    if any(target.resolve() == p or target.resolve() in p.parents for p in protected):
        raise IsrnetError(f"{target} would replace the input series; choose another -o")
    write_dicom_series(result, target, identity, axis, f"isrnet x{factor:.3g}",
                       f"isrnet {__version__} inter-slice super-resolution x{factor:.3g} along the slice axis "
                       f"(model: {model})", output.anonymise, keep_frame_of_reference=source.is_dir())
    return target


def predict_file(predictor: Predictor, source: Path, output_folder: Path, requested: PredictionSettings,
                 dtype: str | None, progress=None, output: OutputFormat | None = None,
                 adaptation: AdaptationOptions | None = None) -> Path:
    """Super-resolve one input (3D or 4D) and write it plus `<name>.json`; returns the output path.

    What `requested` leaves open (factor, thickness, slice axis) comes from the model's plans for this case.
    With `adaptation` enabled, a copy of the model is first fine-tuned on this input alone (its first volume)."""
    start = time.time()
    output = output or OutputFormat()
    identity_source = output.identity_source(source)
    if identity_source is not None and dtype:
        raise IsrnetError("--dtype applies to NIfTI/NRRD/MHA output; DICOM output is 16-bit with a rescale slope")
    settings = predictor.settings_for(case_name(source), requested)
    volumes = read_volumes(source)
    if identity_source is not None and len(volumes) > 1:
        raise IsrnetError(f"{source.name}: a 4D image cannot be one DICOM series; use --output-format nifti")
    settings, profile = predictor.with_slice_profile(volumes[0], settings)
    adapted = None
    if adaptation is not None and adaptation.enabled:
        predictor, adapted = adapt_to_case(predictor, case_name(source), volumes[0], settings, profile, adaptation,
                                           source, output_folder / ADAPTED_FOLDER if adaptation.save else None)
    results = [predictor.predict(volume, settings, progress=progress) for volume in volumes]
    axis = predictor.slice_axis(volumes[0], settings)
    factor = volumes[0].spacing[axis] / results[0].spacing[axis]
    out_dtype = dtype or "float32"
    if identity_source is not None:
        target = _write_dicom(results[0], source, output_folder, identity_source, output, axis, factor,
                              predictor.description)
    else:
        target = output_path(source, output_folder)
        write_volumes([r.with_array(_cast(r.array, out_dtype)) for r in results], target)
    sidecar = {"input": str(source), "output": target.name, "model": predictor.description,
               "factor": factor,
               "input_spacing": list(volumes[0].spacing), "output_spacing": list(results[0].spacing),
               "slice_thickness_mm": profile.thickness_mm, "slice_profile": profile.as_record(),
               "slice_axis": axis, "input_positions": input_slice_positions(volumes[0], axis).round(4).tolist(),
               "settings": asdict(settings), "volumes": len(volumes),
               "format": "dicom series" if identity_source is not None else image_ending(target),
               "dtype": "uint16 with RescaleSlope/Intercept" if identity_source is not None else out_dtype,
               "seconds": round(time.time() - start, 2), "isrnet_version": __version__}
    if adapted is not None:
        sidecar["adaptation"] = adapted
    if identity_source is not None:
        sidecar["dicom"] = {"identity_from": str(identity_source), "anonymised": output.anonymise}
        if output.anonymise:  # folder names are often patient names
            sidecar["input"] = sidecar["dicom"]["identity_from"] = "(anonymised)"
    save_json(sidecar, sidecar_of(target))
    return target
