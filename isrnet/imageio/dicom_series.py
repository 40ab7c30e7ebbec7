"""Writing a volume as a derived DICOM series (pydicom), one instance per slice, with the identity of a
source series.

What a viewer or PACS needs from a derived series: the patient and study of the source (copied, never
invented), a new SeriesInstanceUID and SOPInstanceUIDs, ImageType DERIVED\\SECONDARY, a new SeriesNumber and a
SeriesDescription naming what made it, and per instance its own ImagePositionPatient, the same
ImageOrientationPatient, PixelSpacing, SliceThickness/SpacingBetweenSlices of the new grid and 16-bit pixels
with RescaleSlope/Intercept (one scale for the whole series). `anonymise=True` keeps no identity: see
ANONYMOUS_KEPT and documentation/clinical_use.md.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isrnet import __version__
from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import dicom_series_files
from isrnet.imageio.volume import Volume
from isrnet.utilities.files import atomic_folder

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# Copied from the source series (when present); type-2 ones are written empty when the source lacks them.
PATIENT_STUDY_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
                      "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                      "ReferringPhysicianName", "StudyDescription")
EQUIPMENT_TAGS = ("Modality", "Manufacturer", "ManufacturerModelName", "InstitutionName", "StationName",
                  "MagneticFieldStrength", "BodyPartExamined", "PatientPosition", "FrameOfReferenceUID",
                  "PositionReferenceIndicator")
# The acquisition (MR Image module), copied so the series stays a valid MR image; type-1 ones get a fallback.
ACQUISITION_TAGS = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime",
                    "EchoTime", "EchoTrainLength", "FlipAngle", "SequenceName", "ProtocolName")
TYPE_1_FALLBACK = {"ScanningSequence": "RM", "SequenceVariant": "NONE"}  # RM: research mode
TYPE_2_EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                "AccessionNumber", "ReferringPhysicianName", "Manufacturer", "PositionReferenceIndicator",
                "ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength")
# With anonymise: only these are copied (not identifying on their own); UIDs and the patient ID are new,
# names and dates are left empty.
ANONYMOUS_KEPT = ("PatientSex", "PatientAge", "Modality", "Manufacturer", "ManufacturerModelName",
                  "MagneticFieldStrength", "BodyPartExamined", "PatientPosition", *ACQUISITION_TAGS)
SERIES_NUMBER_OFFSET = 1000  # derived series number = source series number + this


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


def write_dicom_series(volume: Volume, folder: str | Path, identity: SeriesIdentity, slice_axis: int,
                       description: str, derivation: str, anonymise: bool = False,
                       keep_frame_of_reference: bool = True) -> Path:
    """Write `volume` as one derived series into the (new) folder `folder`, atomically; returns the folder.

    Instances are stacked along `slice_axis`; `description` is appended to the source SeriesDescription.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    rows_axis, columns_axis = _slice_layout(volume, slice_axis)
    array = np.asarray(volume.array, dtype=np.float64)
    intercept, slope = _pixel_scale(array)
    stored = np.clip(np.round((array - intercept) / slope), 0, 65535).astype(np.uint16)
    now = datetime.datetime.now()
    series_uid = generate_uid()
    frame_of_reference = identity.tags.get("FrameOfReferenceUID") if keep_frame_of_reference and not anonymise \
        else None
    frame_of_reference = frame_of_reference or generate_uid()
    study_uid = identity.tags.get("StudyInstanceUID") if not anonymise else None
    study_uid = study_uid or generate_uid()
    anonymous_id = f"isrnet-{generate_uid()[-12:]}"
    window_low, window_high = np.percentile(array, [0.5, 99.5])
    row_cosine, column_cosine = volume.direction[:, columns_axis], volume.direction[:, rows_axis]
    normal = volume.direction[:, slice_axis]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(folder) as temporary:
        for k in range(volume.shape[slice_axis]):
            index = np.zeros(3)
            index[slice_axis] = k
            position = volume.index_to_world(index)
            pixels = np.take(stored, k, axis=slice_axis)  # [rows axis, columns axis] in array order
            if rows_axis > columns_axis:
                pixels = pixels.T
            instance_uid = generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = instance_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationVersionName = f"isrnet {__version__}"[:16]
            ds = pydicom.Dataset()
            ds.file_meta = meta
            kept = ANONYMOUS_KEPT if anonymise else PATIENT_STUDY_TAGS + EQUIPMENT_TAGS + ACQUISITION_TAGS
            for keyword in ("SpecificCharacterSet", *kept):
                if keyword in identity.tags:
                    setattr(ds, keyword, getattr(identity.tags, keyword))
            for keyword in TYPE_2_EMPTY:
                if keyword not in ds:
                    setattr(ds, keyword, None)  # present and empty
            for keyword, fallback in TYPE_1_FALLBACK.items():
                if not ds.get(keyword):
                    setattr(ds, keyword, fallback)
            if anonymise:
                ds.PatientID = anonymous_id
                ds.PatientIdentityRemoved = "YES"
                ds.DeidentificationMethod = "isrnet --anonymise: new UIDs and patient ID; names and dates removed"
            ds.Modality = ds.get("Modality") or "MR"
            ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, instance_uid
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_of_reference
            ds.SeriesNumber = identity.series_number + SERIES_NUMBER_OFFSET
            ds.SeriesDescription = f"{identity.series_description} {description}".strip()[:64]
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.DerivationDescription = derivation[:1024]
            ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
            ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_cosine, *column_cosine)]
            ds.SliceLocation = f"{float(position @ normal):.6f}"
            ds.PixelSpacing = [f"{volume.spacing[rows_axis]:.6f}", f"{volume.spacing[columns_axis]:.6f}"]
            ds.SliceThickness = ds.SpacingBetweenSlices = f"{volume.spacing[slice_axis]:.6f}"
            ds.Rows, ds.Columns = pixels.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = f"{intercept:.10g}", f"{slope:.10g}", "US"
            ds.WindowCenter = f"{(window_low + window_high) / 2:.6g}"
            ds.WindowWidth = f"{max(window_high - window_low, 1e-6):.6g}"
            ds.PixelData = np.ascontiguousarray(pixels).tobytes()
            ds.save_as(temporary / f"IM_{k + 1:05d}.dcm", enforce_file_format=True)
    return folder
