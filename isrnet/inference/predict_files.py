"""File-level prediction: find the inputs, read, super-resolve every 3D volume, write (outputs.py) with a JSON
sidecar. `path_prediction.py` runs this over many inputs (parts, process pool)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from isrnet import __version__
from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.imageio import read_volumes
from isrnet.imageio.formats import IMAGE_ENDINGS, image_ending, is_dicom_folder
from isrnet.imageio.geometry import input_slice_positions
from isrnet.inference.outputs import (ADAPTED_FOLDER, OutputFormat, dicom_record, output_path, write_image,
                                      write_series, write_sidecar)
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.training.adaptation import AdaptationOptions


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


def part_of(inputs: list[Path], num_parts: int, part_id: int) -> list[Path]:
    """Every num_parts-th input starting at part_id: the parts are disjoint and cover all inputs."""
    if not 0 <= part_id < num_parts:
        raise IsrnetError(f"-part_id must be in 0 .. {num_parts - 1}")
    return inputs[part_id::num_parts]


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
    case = case_name(source)
    volumes = read_volumes(source)
    if identity_source is not None and len(volumes) > 1:
        raise IsrnetError(f"{source.name}: a 4D image cannot be one DICOM series; use --output-format nifti")
    settings, profile = predictor.resolve(volumes[0], requested, case)  # every volume of a 4D input alike
    adapted = None
    if adaptation is not None and adaptation.enabled:
        predictor, adapted = predictor.adapted_to(case, volumes[0], settings, profile, adaptation, source,
                                                  output_folder / ADAPTED_FOLDER if adaptation.save else None)
    results = [predictor.run_resolved(volume, settings, profile, progress) for volume in volumes]
    first = results[0]
    out_dtype = dtype or "float32"
    if identity_source is not None:
        target = write_series(first.volume, output_folder / case, identity_source, [source], first.slice_axis,
                              f"isrnet x{first.factor:.3g}",
                              f"isrnet {__version__} inter-slice super-resolution x{first.factor:.3g} along the slice "
                              f"axis (model: {predictor.description})", output,
                              keep_frame_of_reference=source.is_dir())
    else:
        target = write_image([r.volume for r in results], output_path(source, output_folder), out_dtype)
    sidecar = {"input": str(source), "output": target.name, "model": predictor.description,
               "factor": first.factor,
               "input_spacing": list(volumes[0].spacing), "output_spacing": list(first.volume.spacing),
               "slice_profile": first.slice_profile.as_record(), "slice_axis": first.slice_axis,
               "input_positions": input_slice_positions(volumes[0], first.slice_axis).round(4).tolist(),
               "settings": asdict(first.settings), "volumes": len(volumes),
               "format": "dicom series" if identity_source is not None else image_ending(target),
               "dtype": "uint16 with RescaleSlope/Intercept" if identity_source is not None else out_dtype,
               "seconds": round(time.time() - start, 2), "isrnet_version": __version__}
    if adapted is not None:
        sidecar["adaptation"] = adapted
    if identity_source is not None:
        sidecar["dicom"] = dicom_record(identity_source, output)
        if output.anonymise:  # folder names are often patient names
            sidecar["input"] = "(anonymised)"
    write_sidecar(sidecar, target)
    return target

