"""Reading DICOM series as time series (`FrameSource`): classic series with several instances per slice position,
Siemens mosaics, and plain 3D series (one frame, read exactly as before).

Only headers are read when a series is opened (pydicom, `stop_before_pixels`); a frame's pixels are read when the
frame is asked for: a classic frame through SimpleITK's series reader on that frame's files (so its geometry is what
the 3D path gives for the same files), a mosaic through nibabel's decoder.

How frames are told apart (classic series): when no slice position repeats, the series is 3D. Otherwise the first of
TemporalPositionIdentifier, TriggerTime and AcquisitionNumber that takes as many values as the most instances at one
position groups the instances into frames, in the order of its values; trigger times that vary a little between
slices (cine acquired slice by slice) are ranked within each position instead. Every frame must hold the same number
of slices, else the series is refused (a truncated frame). A folder of Siemens mosaics is one frame per file, ordered
by AcquisitionNumber (else InstanceNumber). Times are in ms: see `_frame_times_ms` and `_time_axis`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Sequence

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import check_image_shape, dicom_series_files, from_sitk, sitk_read_error
from isrnet.imageio.time_series import FrameSource, FramesInMemory, TimeAxis
from isrnet.imageio.volume import Volume

# The header fields the grouping and the time axis need (read without pixels).
_HEADER_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "TemporalPositionIdentifier",
                "NumberOfTemporalPositions", "TriggerTime", "TemporalPositionTimeOffset", "AcquisitionNumber",
                "InstanceNumber", "AcquisitionTime", "ContentTime", "RepetitionTime", "SliceThickness",
                "SamplesPerPixel", "Rows", "Columns")
_TEMPORAL_KEYS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionNumber")
_POSITION_DECIMALS = 2  # slice positions equal to 0.01 mm are the same position
_TR_AGREEMENT = 0.05  # RepetitionTime is the step when it is within 5 % of the frame times' median interval


@dataclass(frozen=True)
class _Header:
    """One instance's file and the fields read from its header."""
    file: str
    fields: dict

    def number(self, keyword: str) -> float | None:
        value = self.fields.get(keyword)
        try:
            return None if value is None or value == "" else float(value)
        except (TypeError, ValueError):
            return None

    @property
    def position(self) -> tuple[float, ...] | None:
        ipp = self.fields.get("ImagePositionPatient")
        try:
            return tuple(round(float(v), _POSITION_DECIMALS) for v in ipp) if ipp and len(ipp) == 3 else None
        except (TypeError, ValueError):
            return None

    @property
    def distance(self) -> float:
        """Position along the slice normal (row cosine x column cosine), for sorting a frame's slices."""
        iop = [float(v) for v in self.fields["ImageOrientationPatient"]]
        normal = np.cross(iop[:3], iop[3:])
        return float(normal @ np.asarray([float(v) for v in self.fields["ImagePositionPatient"]]))


def _read_dataset(file: str, tags: Sequence[str] | None = None) -> object:
    """The header of `file` without its pixels (only `tags` when given), as a pydicom Dataset."""
    import pydicom

    try:
        return pydicom.dcmread(file, stop_before_pixels=True, specific_tags=list(tags) if tags else None)
    except Exception as error:  # pydicom raises several types for damaged files
        raise IsrnetError(f"{file}: cannot be read, the file may be truncated or corrupt "
                          f"({type(error).__name__})") from None


def _read_header(file: str) -> _Header:
    dataset = _read_dataset(file, _HEADER_TAGS)
    return _Header(file, {keyword: dataset.get(keyword) for keyword in _HEADER_TAGS})


def _dicom_time_seconds(value: object) -> float | None:
    """Seconds since midnight of a DICOM TM value ('HHMMSS.FFFFFF', or the old 'HH:MM:SS.frac')."""
    text = str(value or "").strip().replace(":", "")
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4]) if len(text) >= 4 else 0
        seconds = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return hours * 3600.0 + minutes * 60.0 + seconds


def _read_series_files(folder: Path, files: Sequence[str]) -> Volume:
    """One 3D volume from `files` in this order, read as the 3D path reads a series (SimpleITK; the thickness is
    the first file's SliceThickness)."""
    import SimpleITK as sitk


    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise sitk_read_error(folder, error) from None
    thickness = None
    if reader.HasMetaDataKey(0, "0018|0050"):
        try:
            thickness = float(reader.GetMetaData(0, "0018|0050").strip())
        except ValueError:
            thickness = None
    check_image_shape(folder, image.GetDimension(), image.GetSize(), image.GetNumberOfComponentsPerPixel())
    return from_sitk(image, thickness)


# --- the time axis ------------------------------------------------------------------------------------------------

def _strictly_increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def _frame_times_ms(frames: Sequence[Sequence[_Header]]) -> tuple[float, ...] | None:
    """Each frame's time in ms: TriggerTime (the median over a frame's instances;
    the cardiac delay after the R wave, kept as the source gives it) when every instance has one and the frames'
    times increase, else TemporalPositionTimeOffset (which isrnet writes for series not gated), else AcquisitionTime
    (else ContentTime) of each frame's first instance relative to the first frame, else None."""
    if len(frames) < 2:
        return None
    triggers = [[h.number("TriggerTime") for h in frame] for frame in frames]
    if all(t is not None for frame in triggers for t in frame):
        times = [float(median(frame)) for frame in triggers]
        if _strictly_increasing(times):
            return tuple(times)
    offsets = [[h.number("TemporalPositionTimeOffset") for h in frame] for frame in frames]
    if all(t is not None for frame in offsets for t in frame):  # what isrnet writes for a series not gated
        times = [round(1000.0 * float(median(frame)), 6) for frame in offsets]
        if _strictly_increasing(times):
            return tuple(times)
    for keyword in ("AcquisitionTime", "ContentTime"):
        clock = [[_dicom_time_seconds(h.fields.get(keyword)) for h in frame] for frame in frames]
        if all(t is not None for frame in clock for t in frame):
            starts = [min(frame) for frame in clock]
            starts = [s + 86400.0 if s < starts[0] else s for s in starts]  # past midnight
            if _strictly_increasing(starts):
                return tuple(round((s - starts[0]) * 1000.0, 3) for s in starts)
    return None


def _time_axis(frames: Sequence[Sequence[_Header]], repetition_ms: float | None) -> TimeAxis:
    """The series' time axis, in ms. `step`: with frame times, their median interval (cine: the trigger times'
    interval; RepetitionTime there is the time between k-space lines, not between frames), replaced by
    RepetitionTime when it agrees within 5 % (fMRI-like series, whose frames are one TR apart, give the exact TR
    instead of clock times rounded by the scanner); without frame times, RepetitionTime; else unknown."""
    times = _frame_times_ms(frames)
    step = repetition_ms
    if times is not None:
        interval = float(median(np.diff(times)))
        agrees = repetition_ms is not None and abs(repetition_ms - interval) <= _TR_AGREEMENT * interval
        step = repetition_ms if agrees else interval
    return TimeAxis(frames=len(frames), step=step or None, unit="msec", frame_times_ms=times)


# --- classic series: one instance per slice and frame ------------------------------------------------------------

def _group_by_key(headers: Sequence[_Header], keyword: str, per_position: int) -> list[list[_Header]] | None:
    """Frames told apart by `keyword`, in the order of its values, or None when it does not tell them apart."""
    values = [h.number(keyword) for h in headers]
    if any(v is None for v in values):
        return None
    distinct = sorted(set(values))
    if len(distinct) == per_position:
        return [[h for h, v in zip(headers, values) if v == value] for value in distinct]
    if keyword != "TriggerTime":
        return None
    by_position: dict[tuple, list[_Header]] = {}
    for header in headers:  # trigger times that differ a little between slices: rank them per position
        by_position.setdefault(header.position, []).append(header)
    counts = {len(group) for group in by_position.values()}
    if counts != {per_position}:
        return None
    frames: list[list[_Header]] = [[] for _ in range(per_position)]
    for group in by_position.values():
        for rank, header in enumerate(sorted(group, key=lambda h: h.number("TriggerTime"))):
            frames[rank].append(header)
    return frames


def _group_frames(folder: Path, headers: Sequence[_Header]) -> list[list[_Header]]:
    """The instances of each frame (see the module docstring); one frame when no slice position repeats."""
    positions = [h.position for h in headers]
    if any(p is None for p in positions) or len(set(positions)) == len(positions):
        return [list(headers)]
    per_position = max(positions.count(p) for p in set(positions))
    for keyword in _TEMPORAL_KEYS:
        frames = _group_by_key(headers, keyword, per_position)
        if frames is not None:
            break
    else:
        fewest = min(positions.count(p) for p in set(positions))
        if fewest != per_position:  # trigger times ranked per position: which frame lacks a slice is unknown
            raise IsrnetError(f"{folder}: a truncated frame: slice positions hold {fewest} to {per_position} "
                              f"instances; nothing read (copy the series again)")
        raise IsrnetError(f"{folder}: up to {per_position} instances share a slice position, but neither "
                          f"{', '.join(_TEMPORAL_KEYS)} tells them apart; put one series (one echo, one time "
                          f"point) per folder")
    _check_frames(folder, frames)
    return [sorted(frame, key=lambda h: h.distance) for frame in frames]


def _check_frames(folder: Path, frames: Sequence[Sequence[_Header]]) -> None:
    """Every frame holds the same number of slices, each slice position once."""
    counts = [len(frame) for frame in frames]
    expected = max(counts)
    short = [index + 1 for index, count in enumerate(counts) if count != expected]
    if short:
        listed = ", ".join(f"frame {i} has {counts[i - 1]}" for i in short[:5])
        raise IsrnetError(f"{folder}: a truncated frame: {len(frames)} frames of {expected} slices, but {listed}; "
                          f"nothing read (copy the series again)")
    for index, frame in enumerate(frames):
        if len({h.position for h in frame}) != len(frame):
            raise IsrnetError(f"{folder}: frame {index + 1} of {len(frames)} holds a slice position twice; "
                              f"its instances do not form one volume")


class DicomSeriesFrames(FrameSource):
    """A classic DICOM series (one file per slice), one frame per temporal position, each read when asked for."""

    def __init__(self, folder: Path, frames: list[list[_Header]], time: TimeAxis,
                 files: Sequence[str] | None = None) -> None:
        self.folder, self.name = folder, folder.name
        self.time = time
        self._frames = frames
        self._files = files  # a 3D series: its files in the order the 3D path reads them

    def frame_files(self, index: int) -> list[str]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self._files is not None:
            return list(self._files)
        return [h.file for h in self._frames[index]]

    def frame(self, index: int) -> Volume:
        return _read_series_files(self.folder, self.frame_files(index))


def _classic_frames(folder: Path, files: Sequence[str], headers: list[_Header]) -> DicomSeriesFrames:
    if (headers[0].number("SamplesPerPixel") or 1) != 1:
        raise IsrnetError(f"{folder}: has {int(headers[0].number('SamplesPerPixel'))} components per voxel; "
                          f"isrnet needs a scalar (greyscale) image")
    frames = _group_frames(folder, headers)
    if len(frames[0]) == 1:
        raise IsrnetError(f"{folder}: is a 2D image; isrnet needs a 3D stack of slices "
                          f"(put all slices of a series in one folder)")
    if len(frames) == 1:  # 3D: the files in the 3D path's order, so the volume is exactly what it was
        return DicomSeriesFrames(folder, frames, TimeAxis(), files)
    return DicomSeriesFrames(folder, frames, _time_axis(frames, headers[0].number("RepetitionTime")))


# --- Siemens mosaics ----------------------------------------------------------------------------------------------

def _nibabel_dicom():
    """nibabel's DICOM wrappers and CSA reader (imported quietly: nibabel warns that they are experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader, dicomwrappers
    return csareader, dicomwrappers


def is_mosaic(file: str | Path) -> bool:
    """Whether `file` is a Siemens mosaic (several slices tiled in one image, told by its CSA header)."""
    csareader, _ = _nibabel_dicom()
    try:
        return bool(csareader.is_mosaic(csareader.get_csa_header(_read_dataset(str(file)))))
    except (csareader.CSAError, ValueError, TypeError, KeyError):
        return False


def mosaic_volume(file: str | Path) -> Volume:
    """The 3D volume of one Siemens mosaic file, decoded by nibabel.

    nibabel's data array has axes (row, column, slice) and its affine maps those indices to DICOM patient (LPS)
    coordinates, with the slice position corrected for the mosaic's tiling; the Volume takes the axes as
    (slice, row, column), like a classic series read by SimpleITK.
    """
    _, dicomwrappers = _nibabel_dicom()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = dicomwrappers.wrapper_from_file(str(file))
            if not getattr(wrapper, "is_mosaic", False):
                raise IsrnetError(f"{file}: is not a Siemens mosaic, unlike the other files of its series")
            data = np.asarray(wrapper.get_data())
            affine = np.asarray(wrapper.affine, dtype=np.float64)
    except IsrnetError:
        raise
    except Exception as error:  # nibabel and pydicom raise several types (and asserts) for damaged headers
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise IsrnetError(f"{file}: cannot be read as a Siemens mosaic ({detail[:200]})") from None
    if data.ndim != 3 or min(data.shape[:2]) < 1 or data.shape[2] < 2:
        raise IsrnetError(f"{file}: the mosaic holds {data.shape[2] if data.ndim == 3 else 0} slice(s); isrnet "
                          f"needs a 3D stack of slices")
    order = (2, 0, 1)  # Volume axis k is nibabel's axis order[k]
    columns = affine[:3, list(order)]
    spacing = np.linalg.norm(columns, axis=0)
    if np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    thickness = _Header(str(file), {"SliceThickness": wrapper.get("SliceThickness")}).number("SliceThickness")
    return Volume(np.ascontiguousarray(np.transpose(data, order)), tuple(spacing), affine[:3, 3].copy(),
                  columns / spacing, thickness)


class MosaicFrames(FrameSource):
    """Siemens mosaic files, one volume each (a 3D image, or fMRI/diffusion EPI as one file per volume)."""

    def __init__(self, files: Sequence[str], time: TimeAxis, name: str) -> None:
        self.files, self.time, self.name = list(files), time, name

    def frame(self, index: int) -> Volume:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return mosaic_volume(self.files[index])


def _mosaic_frames(folder: Path, headers: list[_Header]) -> MosaicFrames:
    """A folder of mosaics: frames ordered by AcquisitionNumber (else InstanceNumber), step RepetitionTime."""
    key = next((k for k in ("AcquisitionNumber", "InstanceNumber")
                if None not in (numbers := [h.number(k) for h in headers]) and len(set(numbers)) == len(headers)), None)
    ordered = sorted(headers, key=lambda h: h.number(key)) if key else sorted(headers, key=lambda h: h.file)
    shapes = {(h.number("Rows"), h.number("Columns")) for h in ordered}
    if len(shapes) != 1:
        raise IsrnetError(f"{folder}: its mosaics differ in size ({len(shapes)} sizes); one run per folder")
    if len(ordered) == 1:
        return MosaicFrames([ordered[0].file], TimeAxis(), folder.name)
    times = _frame_times_ms([[h] for h in ordered])
    repetition = ordered[0].number("RepetitionTime")
    return MosaicFrames([h.file for h in ordered], TimeAxis(len(ordered), repetition or None, "msec", times),
                        folder.name)


# --- the entry point ----------------------------------------------------------------------------------------------

def open_dicom_frames(path: Path) -> FrameSource:
    """Open a DICOM series folder (the series with the most files) or a Siemens mosaic file, frame by frame.

    A 3D series gives one frame, the volume the 3D path always gave; a series with several instances per slice
    position one frame per temporal position; a folder of mosaics one frame per file. Raises IsrnetError naming
    the folder for a truncated frame, instances no temporal tag tells apart, 2D or multi-component images.
    """
    path = Path(path)
    if path.is_file():
        return _open_file(path)
    files = dicom_series_files(path)
    if is_mosaic(files[0]):
        return _mosaic_frames(path, [_read_header(f) for f in files])
    return _classic_frames(path, files, [_read_header(f) for f in files])


def _open_file(path: Path) -> FrameSource:
    """One DICOM file: a mosaic (one frame), else what SimpleITK reads from it (an enhanced multi-frame image)."""
    if is_mosaic(path):
        return MosaicFrames([str(path)], TimeAxis(), path.name)
    import SimpleITK as sitk


    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise sitk_read_error(path, error) from None
    check_image_shape(path, image.GetDimension(), image.GetSize(), image.GetNumberOfComponentsPerPixel())
    if image.GetDimension() != 3:
        raise IsrnetError(f"{path}: {image.GetDimension()}D images are not supported (3D or 4D only)")
    return FramesInMemory([from_sitk(image)], name=path.name)
