"""Writing what prediction and fusion produce: the output format (NIfTI/NRRD/MHA, or a derived DICOM series), the
output's name, the guard that never lets an output replace an input, and the JSON sidecar beside every output.
`isr_predict` (predict_files.py) and `isr_fuse` (fusion/fuse.py) both write through here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, write_volumes
from isrnet.imageio.dicom_series import DicomSeriesSink, read_identity, write_dicom_series
from isrnet.imageio.reader_writer import open_frame_sink
from isrnet.imageio.time_series import FrameSink, TimeAxis
from isrnet.imageio.formats import FLOAT_WRITABLE, OUTPUT_FORMATS, image_ending, is_dicom_folder, sidecar_of
from isrnet.utilities.files import save_json

ADAPTED_FOLDER = "adapted_weights"  # under the prediction's output folder, with --save-adapted


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


def check_not_an_input(target: Path, inputs: Iterable[Path], replaced: bool = True, what: str = "-o") -> None:
    """isrnet never overwrites its inputs: `target` may not be one of `inputs`; when it is `replaced` as a whole (a
    file, a series folder), not a folder holding one either. An output folder that only receives files
    (replaced=False) may hold the inputs' folder, not be it."""
    resolved = Path(target).resolve()
    for source in inputs:
        source = Path(source).resolve()
        if resolved == source or (replaced and resolved in source.parents):
            raise IsrnetError(f"{what} {target} would replace an input ({source.name}); isrnet never overwrites its "
                              f"inputs: choose another output")


def output_path(source: Path, output_folder: Path) -> Path:
    """Same name as the input; NIfTI unless the input's format holds float voxels."""
    ending = image_ending(source) if source.is_file() else None
    if ending in (".nhdr", ".mhd"):  # detached headers: write single-file equivalents
        ending = {".nhdr": ".nrrd", ".mhd": ".mha"}[ending]
    if ending is None or ending not in FLOAT_WRITABLE:
        ending = ".nii.gz"
    stem = source.name[: -len(image_ending(source))] if image_ending(source) else case_name(source)  # DICOM: no ending
    return output_folder / f"{stem}{ending}"


def cast_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """The array in `dtype`; integer types are rounded and clipped to their range."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


def write_image(volumes: list[Volume], target: Path, dtype: str = "float32") -> Path:
    """One NIfTI/NRRD/MHA file (4D for several volumes), written atomically."""
    write_volumes([volume.with_array(cast_to(volume.array, dtype)) for volume in volumes], target)
    return target


def image_sink(target: Path, time: TimeAxis, dtype: str = "float32") -> FrameSink:
    """A NIfTI/NRRD/MHA output written frame by frame (4D NIfTI streams to disk), each frame cast to `dtype`."""
    return CastingSink(open_frame_sink(target, time, dtype), dtype)


class CastingSink(FrameSink):
    """Frames cast to an output type (integers rounded and clipped) on their way into another sink."""

    def __init__(self, sink: FrameSink, dtype: str) -> None:
        self.sink, self.dtype = sink, dtype

    def write(self, volume: Volume) -> None:
        self.sink.write(volume.with_array(cast_to(volume.array, self.dtype)))

    def commit(self) -> None:
        self.sink.commit()

    def abort(self) -> None:
        self.sink.abort()


def dicom_sink(target: Path, identity_source: Path, axis: int, time: TimeAxis, description: str, comment: str,
               output: OutputFormat, keep_frame_of_reference: bool) -> FrameSink:
    """A derived DICOM series of `identity_source`'s patient and study in the folder `target`, written frame by frame
    (one instance per plane across `axis`, with temporal positions for a time series)."""
    return DicomSeriesSink(target, read_identity(identity_source), axis, description, comment, output.anonymise,
                           keep_frame_of_reference=keep_frame_of_reference, time=time)


def write_series(volume: Volume, target: Path, identity_source: Path, protected: Iterable[Path], axis: int,
                 description: str, comment: str, output: OutputFormat, keep_frame_of_reference: bool) -> Path:
    """A derived DICOM series of `identity_source`'s patient and study in the folder `target`, one instance per plane
    across `axis`; refused when `target` would replace one of the `protected` inputs."""
    check_not_an_input(target, [*protected, identity_source])
    write_dicom_series(volume, target, read_identity(identity_source), axis, description, comment, output.anonymise,
                       keep_frame_of_reference=keep_frame_of_reference)
    return target


def dicom_record(identity_source: Path, output: OutputFormat) -> dict:
    """What a sidecar says about a DICOM output's identity."""
    return {"identity_from": "(anonymised)" if output.anonymise else str(identity_source),
            "anonymised": output.anonymise}


def write_sidecar(record: dict, output: Path) -> Path:
    """`<output>.json` beside an output file or series folder."""
    path = sidecar_of(output)
    save_json(record, path)
    return path
