"""File-level prediction: find the inputs, read, super-resolve every 3D volume, write (outputs.py) with a JSON
sidecar. `path_prediction.py` runs this over many inputs (parts, process pool)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from isrnet import __version__
from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import open_frames
from isrnet.imageio.formats import IMAGE_ENDINGS, image_ending, is_dicom_folder
from isrnet.imageio.geometry import input_slice_positions
from isrnet.inference.outputs import (ADAPTED_FOLDER, OutputFormat, check_not_an_input, dicom_record, dicom_sink,
                                      image_sink, output_path, write_sidecar)
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.training.adaptation import AdaptationOptions
from isrnet.utilities.memory import fix_mmap_threshold
from isrnet.utilities.progress import retarget


def find_inputs(source: Path) -> list[Path]:
    """A file (an image, or a DICOM file such as a Siemens mosaic), a DICOM series folder, or a folder of image files
    and DICOM series folders."""
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
    """Super-resolve one input (3D, or 4D frame by frame) and write it plus `<name>.json`; returns the output path.

    What `requested` leaves open (factor, thickness, slice axis) comes from the model's plans for this case; the
    slice profile is decided once, on the first frame, for every frame. With `adaptation` enabled, a copy of the
    model is first fine-tuned on this input alone (its first frame). A time series is read, predicted and written
    a few frames at a time, keeping its frame count, time step and unit (and DICOM temporal positions); nothing is
    left under the output's name when a frame fails. `progress` is a bar (utilities/progress) counting gaps, or
    frames for a time series."""
    start = time.time()
    output = output or OutputFormat()
    identity_source = output.identity_source(source)
    if identity_source is not None and dtype:
        raise IsrnetError("--dtype applies to NIfTI/NRRD/MHA output; DICOM output is 16-bit with a rescale slope")
    case = case_name(source)
    with open_frames(source) as frames:
        first_frame = frames.frame(0)
        settings, profile = predictor.resolve(first_frame, requested, case)  # every frame alike
        predictor = predictor.for_case(case)  # a training case its own witness sent back to the start
        adapted = None
        if adaptation is not None and adaptation.enabled:
            predictor, adapted = predictor.adapted_to(case, first_frame, settings, profile, adaptation, source,
                                                      output_folder / ADAPTED_FOLDER if adaptation.save else None)
        out_dtype = dtype or "float32"
        axis = predictor.slice_axis(first_frame, settings)
        factor = predictor.resolve_factor(first_frame, settings, axis)
        input_spacing = list(first_frame.spacing)
        input_positions = input_slice_positions(first_frame, axis)
        del first_frame  # the frames are read again as they are predicted
        if identity_source is not None:
            target = output_folder / case
            check_not_an_input(target, [source, identity_source])
            sink = dicom_sink(target, identity_source, axis, frames.time, f"isrnet x{factor:.3g}",
                              f"isrnet {__version__} inter-slice super-resolution x{factor:.3g} along the slice axis "
                              f"(model: {predictor.description})", output, keep_frame_of_reference=source.is_dir())
        else:
            target = output_path(source, output_folder)
            sink = image_sink(target, frames.time, out_dtype)
        time_series = len(frames) > 1
        if time_series:
            fix_mmap_threshold()  # the peak memory stays flat over the frames (utilities/memory.py)
        gaps = None
        if progress is not None and time_series:
            retarget(progress, len(frames), "frame")
        elif progress is not None:
            gaps = progress.update
        first = None
        with sink:
            for result in predictor.run_frames(iter(frames), settings, profile, gaps):
                first = first or result
                sink.write(result.volume)
                if progress is not None and time_series:
                    progress.update(1)
    sidecar = {"input": str(source), "output": target.name, "model": predictor.description,
               "factor": first.factor,
               "input_spacing": input_spacing, "output_spacing": list(first.volume.spacing),
               "slice_profile": first.slice_profile.as_record(), "slice_axis": first.slice_axis,
               "input_positions": input_positions.round(4).tolist(),
               "settings": asdict(first.settings), "volumes": len(frames),
               "format": "dicom series" if identity_source is not None else image_ending(target),
               "dtype": "uint16 with RescaleSlope/Intercept" if identity_source is not None else out_dtype,
               "seconds": round(time.time() - start, 2), "isrnet_version": __version__}
    if time_series:
        sidecar["time"] = frames.time.as_record()
    if adapted is not None:
        sidecar["adaptation"] = adapted
    if identity_source is not None:
        sidecar["dicom"] = dicom_record(identity_source, output)
        if output.anonymise:  # folder names are often patient names
            sidecar["input"] = "(anonymised)"
    write_sidecar(sidecar, target)
    return target
