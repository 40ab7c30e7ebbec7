"""Writing a volume, or a time series frame by frame, as a derived DICOM series (pydicom), one instance per slice,
with the identity of a source series.

What a viewer or PACS needs from a derived series: the patient and study of the source (copied, never
invented), a new SeriesInstanceUID and SOPInstanceUIDs, ImageType DERIVED\\SECONDARY\\OTHER (an MR image needs a
third value), a new SeriesNumber and a SeriesDescription naming what made it, and per instance its own
ImagePositionPatient, the same ImageOrientationPatient, PixelSpacing, SliceThickness/SpacingBetweenSlices of the new
grid and 16-bit pixels with RescaleSlope/Intercept (one scale per frame: for a 3D volume, one for the whole series).
A 4D series numbers its frames with TemporalPositionIdentifier (see `DicomSeriesSink`). `anonymise=True` keeps no
identity: see ANONYMOUS_KEPT and documentation/clinical_use.md.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from isrnet import __version__
from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import dicom_series_files
from isrnet.imageio.time_series import FrameSink, TimeAxis
from isrnet.imageio.volume import Volume
from isrnet.utilities.files import atomic_folder

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# Copied from the source series (when present); type-2 ones are written empty when the source lacks them.
PATIENT_STUDY_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
                      "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                      "ReferringPhysicianName", "StudyDescription")
EQUIPMENT_TAGS = ("Modality", "Manufacturer", "ManufacturerModelName", "InstitutionName", "StationName",
                  "MagneticFieldStrength", "BodyPartExamined", "Laterality", "PatientPosition", "FrameOfReferenceUID",
                  "PositionReferenceIndicator")
# The acquisition (MR Image module), copied so the series stays a valid MR image; type-1 ones get a fallback.
ACQUISITION_TAGS = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime",
                    "EchoTime", "EchoTrainLength", "FlipAngle", "SequenceName", "ProtocolName")
TYPE_1_FALLBACK = {"ScanningSequence": "RM", "SequenceVariant": "NONE"}  # RM: research mode
TYPE_2_EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                "AccessionNumber", "ReferringPhysicianName", "Manufacturer", "PositionReferenceIndicator",
                "ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength",
                "Laterality", "PatientPosition", "RepetitionTime")  # the last three are type 2C: empty when unknown
# With anonymise: only these are copied (not identifying on their own); UIDs and the patient ID are new,
# names and dates are left empty.
ANONYMOUS_KEPT = ("PatientSex", "PatientAge", "Modality", "Manufacturer", "ManufacturerModelName",
                  "MagneticFieldStrength", "BodyPartExamined", "Laterality", "PatientPosition", *ACQUISITION_TAGS)
SERIES_NUMBER_OFFSET = 1000  # derived series number = source series number + this
# An MR image needs a value 3 (dciodvfy: "A value is required for value 3 in MR Images"); OTHER is its defined term
# for an image none of the others (MPR, T1 MAP, ...) describes.
IMAGE_TYPE = ("DERIVED", "SECONDARY", "OTHER")


@dataclass
class SeriesIdentity:
    """What a derived series takes from its source series (a pydicom Dataset of the copied tags)."""
    tags: object  # pydicom.Dataset
    series_number: int
    series_description: str


def read_identity(folder: str | Path) -> SeriesIdentity:
    """The identity of the DICOM series in `folder` (the series with the most files, as isrnet reads it)."""
    import pydicom

    files = dicom_series_files(Path(folder))
    try:
        source = pydicom.dcmread(files[0], stop_before_pixels=True)
    except Exception as error:  # pydicom raises several types for damaged files
        raise IsrnetError(f"{files[0]}: cannot be read as DICOM ({type(error).__name__})") from None
    tags = pydicom.Dataset()
    for keyword in ("SpecificCharacterSet", *PATIENT_STUDY_TAGS, *EQUIPMENT_TAGS, *ACQUISITION_TAGS):
        if keyword in source:  # the character set first: names are decoded and written in it
            setattr(tags, keyword, getattr(source, keyword))
    try:
        number = int(source.get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        number = 0
    return SeriesIdentity(tags, number, str(source.get("SeriesDescription", "")))


def _slice_layout(volume: Volume, slice_axis: int) -> tuple[int, int]:
    """(row axis, column axis) of the instances: row x column cosines must point along the slice axis, so
    readers that sort instances by their position along the normal keep the slice order."""
    rows, columns = [a for a in range(3) if a != slice_axis]
    normal = np.cross(volume.direction[:, columns], volume.direction[:, rows])
    if float(normal @ volume.direction[:, slice_axis]) < 0:
        rows, columns = columns, rows
    return rows, columns


def _pixel_scale(array: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) mapping uint16 0..65535 onto the array's range."""
    low, high = float(np.min(array)), float(np.max(array))
    slope = (high - low) / 65535.0 if high > low else 1.0
    return low, slope


class _Aborted(Exception):
    """Thrown into `atomic_folder` to make it discard the temporary folder."""


class DicomSeriesSink(FrameSink):
    """Frames written as one derived series as they arrive (memory: one frame), into a hidden temporary folder that
    `commit` moves into place; `abort` leaves nothing under the final name.

    A 4D series (`time.frames` > 1) gives every instance TemporalPositionIdentifier (1-based),
    NumberOfTemporalPositions, AcquisitionNumber (the frame) and, when `time.frame_time_ms` is known, TriggerTime
    (gated series) or TemporalPositionTimeOffset (others); InstanceNumber runs over the whole series.
    RescaleSlope/Intercept are per frame (the same for a frame's instances): a streaming writer cannot know the
    range of the frames still to come. The window is the first frame's.
    """

    def __init__(self, folder: str | Path, identity: SeriesIdentity, slice_axis: int, description: str,
                 derivation: str, anonymise: bool = False, keep_frame_of_reference: bool = True,
                 time: TimeAxis | None = None) -> None:
        from pydicom.uid import generate_uid

        self.folder, self.identity, self.slice_axis = Path(folder), identity, slice_axis
        self.description, self.derivation, self.anonymise = description, derivation, anonymise
        self.time = time or TimeAxis()
        self.written = 0
        self._now = datetime.datetime.now()
        self._series_uid = generate_uid()
        frame_of_reference = identity.tags.get("FrameOfReferenceUID") if keep_frame_of_reference and not anonymise \
            else None
        self._frame_of_reference = frame_of_reference or generate_uid()
        study_uid = identity.tags.get("StudyInstanceUID") if not anonymise else None
        self._study_uid = study_uid or generate_uid()
        self._anonymous_id = f"isrnet-{generate_uid()[-12:]}"
        self._window: tuple[float, float] | None = None
        self._shape: tuple[int, int, int] | None = None
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._swap = atomic_folder(self.folder)
        self._temporary: Path | None = self._swap.__enter__()

    def write(self, volume: Volume) -> None:
        """Write the next frame's instances."""
        if self._temporary is None:
            raise IsrnetError(f"{self.folder}: the series is already committed or aborted")
        if self.written >= self.time.frames:
            raise IsrnetError(f"{self.folder}: frame {self.written + 1} given, but the series has {self.time.frames}")
        if self._shape is not None and volume.shape != self._shape:
            raise IsrnetError(f"{self.folder}: frame {self.written + 1} has shape {volume.shape}, the first "
                              f"{self._shape}; all frames of a series share one grid")
        self._shape = volume.shape
        array = np.asarray(volume.array, dtype=np.float64)
        if self._window is None:
            self._window = tuple(float(v) for v in np.percentile(array, [0.5, 99.5]))
        for instance in self._frame_instances(volume, array, self.written):
            instance.save_as(self._temporary / f"IM_{int(instance.InstanceNumber):05d}.dcm", enforce_file_format=True)
        self.written += 1

    def commit(self) -> None:
        """Move the finished series into place (every frame of `time` must have been written)."""
        if self._temporary is None:
            raise IsrnetError(f"{self.folder}: the series is already committed or aborted")
        if self.written != self.time.frames:
            self.abort()
            raise IsrnetError(f"{self.folder}: {self.written} of {self.time.frames} frames written; nothing kept")
        self._temporary = None
        self._swap.__exit__(None, None, None)

    def abort(self) -> None:
        """Remove what was written; the final folder stays as it was."""
        if self._temporary is None:
            return
        self._temporary = None
        try:
            self._swap.__exit__(_Aborted, _Aborted(), None)
        except _Aborted:
            pass

    def _frame_instances(self, volume: Volume, array: np.ndarray, frame: int) -> Iterator[object]:
        """The instances of one frame (pydicom Datasets), one per slice along `slice_axis`."""
        slice_axis = self.slice_axis
        rows_axis, columns_axis = _slice_layout(volume, slice_axis)
        intercept, slope = _pixel_scale(array)
        stored = np.clip(np.round((array - intercept) / slope), 0, 65535).astype(np.uint16)
        row_cosine, column_cosine = volume.direction[:, columns_axis], volume.direction[:, rows_axis]
        normal = volume.direction[:, slice_axis]
        slices = volume.shape[slice_axis]
        for k in range(slices):
            index = np.zeros(3)
            index[slice_axis] = k
            position = volume.index_to_world(index)
            pixels = np.take(stored, k, axis=slice_axis)  # [rows axis, columns axis] in array order
            if rows_axis > columns_axis:
                pixels = pixels.T
            ds = self._instance(frame * slices + k + 1)
            self._add_time(ds, frame)
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_cosine, *column_cosine)]
            ds.SliceLocation = f"{float(position @ normal):.6f}"
            ds.PixelSpacing = [f"{volume.spacing[rows_axis]:.6f}", f"{volume.spacing[columns_axis]:.6f}"]
            ds.SliceThickness = ds.SpacingBetweenSlices = f"{volume.spacing[slice_axis]:.6f}"
            ds.Rows, ds.Columns = pixels.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = f"{intercept:.10g}", f"{slope:.10g}", "US"
            window_low, window_high = self._window
            ds.WindowCenter = f"{(window_low + window_high) / 2:.6g}"
            ds.WindowWidth = f"{max(window_high - window_low, 1e-6):.6g}"
            ds.PixelData = np.ascontiguousarray(pixels).tobytes()
            yield ds

    def _instance(self, number: int) -> object:
        """A new instance with the series' identity, UIDs and derivation, numbered `number`."""
        import pydicom
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid

        instance_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = instance_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationVersionName = f"isrnet {__version__}"[:16]
        ds = pydicom.Dataset()
        ds.file_meta = meta
        kept = ANONYMOUS_KEPT if self.anonymise else PATIENT_STUDY_TAGS + EQUIPMENT_TAGS + ACQUISITION_TAGS
        for keyword in ("SpecificCharacterSet", *kept):
            if keyword in self.identity.tags:
                setattr(ds, keyword, getattr(self.identity.tags, keyword))
        for keyword in TYPE_2_EMPTY:
            if keyword not in ds:
                setattr(ds, keyword, None)  # present and empty
        for keyword, fallback in TYPE_1_FALLBACK.items():
            if not ds.get(keyword):
                setattr(ds, keyword, fallback)
        if self.anonymise:
            ds.PatientID = self._anonymous_id
            ds.PatientIdentityRemoved = "YES"
            ds.DeidentificationMethod = "isrnet --anonymise: new UIDs and patient ID; names and dates removed"
        ds.Modality = ds.get("Modality") or "MR"
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, instance_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = self._study_uid, self._series_uid
        ds.FrameOfReferenceUID = self._frame_of_reference
        ds.SeriesNumber = self.identity.series_number + SERIES_NUMBER_OFFSET
        ds.SeriesDescription = f"{self.identity.series_description} {self.description}".strip()[:64]
        ds.ImageType = list(IMAGE_TYPE)
        ds.DerivationDescription = self.derivation[:1024]
        ds.SeriesDate = ds.ContentDate = self._now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = self._now.strftime("%H%M%S")
        ds.InstanceNumber = number
        return ds

    def _add_time(self, ds: object, frame: int) -> None:
        """The temporal position of a 4D series' instance. The frame's time goes into TriggerTime for a gated series
        (ScanOptions CG or PPG: the MR image module requires TriggerTime there, empty when unknown, and allows it
        nowhere else), else into TemporalPositionTimeOffset (seconds; the enhanced MR attribute, which dciodvfy
        notes as an extension of the MR image)."""
        time_ms = self.time.frame_time_ms(frame) if self.time.frames > 1 else None
        if _gated(ds):
            ds.TriggerTime = None if time_ms is None else f"{time_ms:.6g}"
        elif time_ms is not None:
            ds.TemporalPositionTimeOffset = time_ms / 1000.0
        if self.time.frames > 1:
            ds.TemporalPositionIdentifier = frame + 1
            ds.NumberOfTemporalPositions = self.time.frames
            ds.AcquisitionNumber = frame + 1


def _gated(ds: object) -> bool:
    """Whether the acquisition was cardiac or pulse gated (ScanOptions CG or PPG)."""
    options = ds.get("ScanOptions") or []
    options = [options] if isinstance(options, str) else list(options)
    return bool({str(option).strip().upper() for option in options} & {"CG", "PPG"})


def write_dicom_series(volume: Volume, folder: str | Path, identity: SeriesIdentity, slice_axis: int,
                       description: str, derivation: str, anonymise: bool = False,
                       keep_frame_of_reference: bool = True) -> Path:
    """Write `volume` as one derived series into the (new) folder `folder`, atomically; returns the folder.

    Instances are stacked along `slice_axis`; `description` is appended to the source SeriesDescription.
    """
    with DicomSeriesSink(folder, identity, slice_axis, description, derivation, anonymise,
                         keep_frame_of_reference) as sink:
        sink.write(volume)
    return Path(folder)
