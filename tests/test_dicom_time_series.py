"""DICOM time series: classic series with several instances per slice position read frame by frame, Siemens mosaics
(one file per volume), 4D derived series written frame by frame, and every written series valid for dciodvfy."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from isrnet.errors import IsrnetError
from isrnet.imageio.dicom_reading import open_dicom_frames
from isrnet.imageio.dicom_series import DicomSeriesSink, read_identity, write_dicom_series
from isrnet.imageio.reader_writer import from_sitk
from isrnet.imageio.time_series import TimeAxis
from isrnet.imageio.volume import Volume
from tests.conftest import rotation

MR = "1.2.840.10008.5.1.4.1.1.4"
DIRECTION = rotation(0.3, -0.25, 0.2)  # columns: row cosine, column cosine, (normal)
PIXEL = (0.9, 0.7)  # PixelSpacing: between rows, between columns
SLICE_SPACING = 3.0
ORIGIN = np.array([-40.0, 25.0, 7.5])
FRAMES, SLICES, SIZE = 3, 4, 8
TRIGGERS = (20.0, 65.0, 110.0)


def _dataset(uids: dict, number: int) -> pydicom.Dataset:
    """An MR instance with the series' identity and no image yet (a valid MR image for dciodvfy once it has one)."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID = MR, ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MR, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids["study"], uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.Modality, ds.PatientName, ds.PatientID, ds.PatientSex = "MR", "Test^Cine", "T-1", "O"
    ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.SeriesDescription = "20260101", "120000", 5, "cine"
    ds.PatientBirthDate, ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "", "1", ""
    ds.Laterality, ds.PatientPosition, ds.PositionReferenceIndicator, ds.Manufacturer = "", "HFS", "", "Test"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "GR", "SS", "2D"
    ds.ScanOptions, ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "", "3.2", "1.5", "1"
    ds.InstanceNumber = number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def write_temporal_series(folder: Path, frames: np.ndarray, tags: str = "tpi", skip: tuple[int, int] | None = None,
                          repetition_ms: float = 3.2) -> None:
    """frames [t, slice, row, column] as one file per slice and frame, files named in no particular order.
    `tags`: what tells frames apart (tpi: TemporalPositionIdentifier and TriggerTime; trigger: TriggerTime only;
    jitter: TriggerTime varying by slice; acquisition: AcquisitionNumber and AcquisitionTime 2 s apart).
    `skip`: (frame, slice) left out."""
    folder.mkdir(parents=True)
    row, column = DIRECTION[:, 0], DIRECTION[:, 1]
    normal = np.cross(row, column)
    uids = {"study": generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    order = np.random.default_rng(1).permutation(frames.shape[0] * frames.shape[1])
    for t in range(frames.shape[0]):
        for k in range(frames.shape[1]):
            if (t, k) == skip:
                continue
            number = t * frames.shape[1] + k + 1
            ds = _dataset(uids, number)
            ds.RepetitionTime = f"{repetition_ms:g}"
            ds.ScanOptions = "CG" if tags in ("tpi", "trigger", "jitter") else ""  # trigger times: cardiac gating
            if tags == "tpi":
                ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions = t + 1, frames.shape[0]
            if tags in ("tpi", "trigger", "jitter"):
                ds.TriggerTime = f"{TRIGGERS[t] + (0.7 * k if tags == 'jitter' else 0):g}"
            if tags == "acquisition":
                ds.AcquisitionNumber, ds.AcquisitionTime = t + 1, f"1200{10 + 2 * t:02d}.{250 * k:06d}"
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *column)]
            ds.ImagePositionPatient = [f"{v:.5f}" for v in ORIGIN + k * SLICE_SPACING * normal]
            ds.PixelSpacing = [f"{v:g}" for v in PIXEL]
            ds.SliceThickness, ds.SpacingBetweenSlices = "2.5", f"{SLICE_SPACING:g}"
            ds.Rows, ds.Columns = frames.shape[2:]
            ds.PixelData = np.ascontiguousarray(frames[t, k].astype(np.int16)).tobytes()
            ds.save_as(folder / f"f{order[number - 1]:03d}.dcm", enforce_file_format=True)


def cine(frames: int = FRAMES) -> np.ndarray:
    """Frames that differ: a value per (frame, slice, row, column)."""
    t, k, r, c = np.meshgrid(*[np.arange(n) for n in (frames, SLICES, SIZE, SIZE - 2)], indexing="ij")
    return 1000 * t + 100 * k + 10 * r + c


def _read_3d_path(files: list[str]) -> Volume:
    """What isrnet's 3D path gave before time series: SimpleITK's series reader on GDCM's file order."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    return from_sitk(image, float(reader.GetMetaData(0, "0018|0050")))


def _assert_same(volume: Volume, expected: Volume, atol: float = 0.0) -> None:
    assert volume.shape == expected.shape
    np.testing.assert_allclose(volume.array, expected.array, atol=atol)
    np.testing.assert_allclose(volume.spacing, expected.spacing, rtol=1e-6)
    np.testing.assert_allclose(volume.origin, expected.origin, atol=1e-4)
    np.testing.assert_allclose(volume.direction, expected.direction, atol=1e-6)


@pytest.mark.parametrize("tags", ["tpi", "trigger", "jitter", "acquisition"])
def test_temporal_series_is_read_frame_by_frame(tmp_path: Path, tags: str) -> None:
    data = cine()
    write_temporal_series(tmp_path / "cine", data, tags, repetition_ms=2000.0 if tags == "acquisition" else 3.2)
    with open_dicom_frames(tmp_path / "cine") as frames:
        assert len(frames) == FRAMES and frames.time.unit == "msec"
        normal = np.cross(DIRECTION[:, 0], DIRECTION[:, 1])
        for t, volume in enumerate(frames):
            np.testing.assert_array_equal(volume.array, data[t])
            np.testing.assert_allclose(volume.spacing, (SLICE_SPACING, *PIXEL), rtol=1e-6)
            np.testing.assert_allclose(volume.origin, ORIGIN, atol=1e-4)
            np.testing.assert_allclose(volume.direction, np.stack([normal, DIRECTION[:, 1], DIRECTION[:, 0]], 1),
                                       atol=1e-6)
            assert volume.dicom_thickness_mm == pytest.approx(2.5)
            alone = tmp_path / f"frame{t}"  # the same instances as a 3D series: the same volume
            alone.mkdir()
            for file in frames.frame_files(t):
                shutil.copy(file, alone)
            _assert_same(volume, open_dicom_frames(alone).frame(0))
    if tags == "acquisition":  # fMRI-like: the clock says 2 s, RepetitionTime says it exactly
        assert frames.time.frame_times_ms == pytest.approx((0.0, 2000.0, 4000.0))
        assert frames.time.step == pytest.approx(2000.0)
    else:  # cine: the trigger times' interval, not RepetitionTime
        jitter = 0.7 * (SLICES - 1) / 2 if tags == "jitter" else 0.0
        assert frames.time.frame_times_ms == pytest.approx(tuple(t + jitter for t in TRIGGERS))
        assert frames.time.step == pytest.approx(45.0)


def test_a_3d_series_reads_as_before(tmp_path: Path) -> None:
    write_temporal_series(tmp_path / "t1", cine(1), "tpi")
    files = sitk.ImageSeriesReader().GetGDCMSeriesFileNames(str(tmp_path / "t1"))
    with open_dicom_frames(tmp_path / "t1") as frames:
        assert len(frames) == 1
        volume = frames.frame(0)
    expected = _read_3d_path(list(files))
    assert volume.array.dtype == expected.array.dtype and volume.dicom_thickness_mm == expected.dicom_thickness_mm
    _assert_same(volume, expected)


@pytest.mark.parametrize("tags", ["tpi", "jitter"])
def test_a_truncated_frame_is_refused_with_one_line(tmp_path: Path, tags: str) -> None:
    write_temporal_series(tmp_path / "cine", cine(), tags, skip=(1, 2))
    with pytest.raises(IsrnetError) as refused:
        open_dicom_frames(tmp_path / "cine")
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path / "cine") in message and "truncated" in message
    if tags == "tpi":  # frames told apart by an identifier: the short frame is named
        assert "frame 2 has 3" in message and f"{SLICES} slices" in message


def test_instances_no_temporal_tag_tells_apart_are_refused(tmp_path: Path) -> None:
    write_temporal_series(tmp_path / "echoes", cine(2), "none")
    with pytest.raises(IsrnetError, match="tells them apart"):
        open_dicom_frames(tmp_path / "echoes")


# --- writing -----------------------------------------------------------------------------------------------------

def _sink(folder: Path, identity_source: Path, time: TimeAxis) -> DicomSeriesSink:
    return DicomSeriesSink(folder, read_identity(identity_source), 0, "isrnet x1", "test", time=time)


def test_4d_series_round_trips(tmp_path: Path) -> None:
    """source series -> frames -> written series -> frames: the same frames, temporal positions and trigger times."""
    data = cine()
    write_temporal_series(tmp_path / "cine", data, "tpi")
    with open_dicom_frames(tmp_path / "cine") as source, _sink(tmp_path / "out" / "cine", tmp_path / "cine",
                                                              source.time) as sink:
        for volume in source:
            sink.write(volume)
            assert not (tmp_path / "out" / "cine").exists()  # nothing under the final name before commit
    instances = [pydicom.dcmread(p) for p in sorted((tmp_path / "out" / "cine").iterdir())]
    assert len(instances) == FRAMES * SLICES
    assert sorted(int(ds.InstanceNumber) for ds in instances) == list(range(1, FRAMES * SLICES + 1))
    assert len({ds.SOPInstanceUID for ds in instances}) == len(instances)
    assert {ds.SeriesInstanceUID for ds in instances} == {instances[0].SeriesInstanceUID}
    assert {(int(ds.TemporalPositionIdentifier), int(ds.AcquisitionNumber), float(ds.TriggerTime),
             int(ds.NumberOfTemporalPositions)) for ds in instances} == \
        {(t + 1, t + 1, TRIGGERS[t], FRAMES) for t in range(FRAMES)}
    assert list(instances[0].ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
    with open_dicom_frames(tmp_path / "out" / "cine") as back:
        assert len(back) == FRAMES and back.time.frame_times_ms == pytest.approx(TRIGGERS)
        for t, volume in enumerate(back):
            _assert_same(volume, Volume(data[t].astype(float), (SLICE_SPACING, *PIXEL), ORIGIN,
                                        np.stack([np.cross(DIRECTION[:, 0], DIRECTION[:, 1]), DIRECTION[:, 1],
                                                  DIRECTION[:, 0]], 1)), atol=0.05)


def test_frames_written_read_back_the_same(tmp_path: Path) -> None:
    """frames -> written series -> frames -> written series: the frames and times stay the same."""
    rng = np.random.default_rng(0)
    direction = rotation(-0.2, 0.4, 0.1)[:, ::-1]  # (normal, column, row) as a DICOM series reads: no transpose
    volumes = [Volume(rng.normal(100, 20, (5, 6, 7)), (2.0, 0.8, 1.1), np.array([3.0, -9.0, 4.0]), direction)
               for _ in range(3)]
    write_temporal_series(tmp_path / "identity", cine(1), "acquisition")  # not gated
    time = TimeAxis(3, 2000.0, "msec")  # no frame times: index x step
    first, second = tmp_path / "a", tmp_path / "b"
    with _sink(first, tmp_path / "identity", time) as sink:
        for volume in volumes:
            sink.write(volume)
    offsets = {(int(ds.TemporalPositionIdentifier), float(ds.TemporalPositionTimeOffset), "TriggerTime" in ds)
               for ds in map(pydicom.dcmread, first.iterdir())}
    assert offsets == {(1, 0.0, False), (2, 2.0, False), (3, 4.0, False)}  # seconds; TriggerTime only when gated
    with open_dicom_frames(first) as back:
        assert back.time.frame_times_ms == pytest.approx((0.0, 2000.0, 4000.0))
        assert back.time.step == pytest.approx(2000.0)
        read = list(back)
        with _sink(second, first, back.time) as sink:
            for volume in read:
                sink.write(volume)
    for volume, original in zip(read, volumes):
        _assert_same(volume, original, atol=float(np.ptp(original.array)) / 65535)
    with open_dicom_frames(second) as again:
        assert again.time == back.time
        for volume, original in zip(again, read):
            _assert_same(volume, original, atol=float(np.ptp(original.array)) / 65535)


def test_an_aborted_or_failed_series_leaves_nothing(tmp_path: Path) -> None:
    write_temporal_series(tmp_path / "identity", cine(1))
    volume = Volume(np.ones((3, 4, 4)), (1.0, 1.0, 1.0))
    with pytest.raises(RuntimeError):
        with _sink(tmp_path / "out", tmp_path / "identity", TimeAxis(2, 40.0, "msec")) as sink:
            sink.write(volume)
            raise RuntimeError("stopped")
    with pytest.raises(IsrnetError, match="1 of 2 frames"):
        with _sink(tmp_path / "out", tmp_path / "identity", TimeAxis(2, 40.0, "msec")) as sink:
            sink.write(volume)
    assert list(tmp_path.iterdir()) == [tmp_path / "identity"]  # no final folder, no temporary one


def test_3d_writing_is_unchanged(tmp_path: Path) -> None:
    write_temporal_series(tmp_path / "identity", cine(1), "acquisition")
    volume = Volume(np.arange(60, dtype=float).reshape(3, 4, 5), (2.0, 0.5, 0.6), direction=np.eye(3)[:, ::-1])
    write_dicom_series(volume, tmp_path / "out", read_identity(tmp_path / "identity"), 0, "x1", "test")
    instances = [pydicom.dcmread(p) for p in sorted((tmp_path / "out").iterdir())]
    assert [int(ds.InstanceNumber) for ds in instances] == [1, 2, 3]
    assert not any(k in ds for ds in instances for k in ("TemporalPositionIdentifier", "TriggerTime",
                                                          "TemporalPositionTimeOffset", "AcquisitionNumber"))
    assert len({(ds.RescaleSlope, ds.RescaleIntercept) for ds in instances}) == 1  # one scale for the series
    _assert_same(open_dicom_frames(tmp_path / "out").frame(0), volume, atol=60 / 65535)


# --- Siemens mosaics ---------------------------------------------------------------------------------------------

def csa2(tags: dict[str, tuple[str, list]]) -> bytes:
    """A Siemens CSA2 ('SV10') header: name -> (VR, values), as nibabel.nicom.csareader parses it."""
    out = [b"SV10", b"\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, (vr, values) in tags.items():
        out.append(struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77))
        for value in values:
            item = str(value).encode() + b"\x00"
            out.append(struct.pack("<4i", len(item), len(item), 77, len(item)) + item + b"\x00" * (-len(item) % 4))
    return b"".join(out)


MOSAIC_SLICES, TILE = 5, (6, 8)  # 5 slices in a 3 x 3 grid of 6-row x 8-column tiles
MOSAIC_PIXEL, MOSAIC_SPACING, MOSAIC_THICKNESS = (1.2, 0.8), 3.6, 3.0


def mosaic_origin_offset(grid: int) -> np.ndarray:
    """Siemens' ImagePositionPatient of a mosaic is the corner of the whole mosaic taken as one image of the first
    slice, centred where the slice is: the true corner of slice 0 lies this far from it (rows, then columns)."""
    row, column = DIRECTION[:, 0], DIRECTION[:, 1]
    rows_extra, columns_extra = (grid - 1) * TILE[0] / 2, (grid - 1) * TILE[1] / 2
    return column * MOSAIC_PIXEL[0] * rows_extra + row * MOSAIC_PIXEL[1] * columns_extra


def write_mosaic(path: Path, volume: np.ndarray, acquisition: int = 1, uids: dict | None = None) -> None:
    """volume [slice, row, column] tiled as a Siemens mosaic; slice 0 at ORIGIN, slices along the normal."""
    grid = int(np.ceil(np.sqrt(volume.shape[0])))
    tiled = np.zeros((grid * TILE[0], grid * TILE[1]), np.uint16)
    for s in range(volume.shape[0]):
        r, c = divmod(s, grid)
        tiled[r * TILE[0]:(r + 1) * TILE[0], c * TILE[1]:(c + 1) * TILE[1]] = volume[s]
    row, column = DIRECTION[:, 0], DIRECTION[:, 1]
    uids = uids or {"study": generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    ds = _dataset(uids, acquisition)
    ds.Manufacturer, ds.ImageType = "SIEMENS", ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.ScanningSequence, ds.SequenceVariant, ds.RepetitionTime = "EP", "SK", "2000"
    ds.AcquisitionNumber = acquisition
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *column)]
    ds.ImagePositionPatient = [f"{v:.5f}" for v in ORIGIN - mosaic_origin_offset(grid)]
    ds.PixelSpacing = [f"{v:g}" for v in MOSAIC_PIXEL]
    ds.SliceThickness, ds.SpacingBetweenSlices = f"{MOSAIC_THICKNESS:g}", f"{MOSAIC_SPACING:g}"
    ds.Rows, ds.Columns = tiled.shape
    ds.PixelRepresentation = 0
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", csa2({"NumberOfImagesInMosaic": ("IS", [volume.shape[0]]),
                                    "AcquisitionMatrixText": ("SH", [f"{TILE[0]}p*{TILE[1]}"]),
                                    "SliceNormalVector": ("FD", [f"{v:.8f}" for v in np.cross(row, column)])}))
    ds.PixelData = tiled.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_a_mosaic_is_the_right_volume(tmp_path: Path) -> None:
    volume = np.full((MOSAIC_SLICES, *TILE), 10, np.uint16)
    volume[2, 3, 5] = 900  # a known voxel: slice 2, row 3, column 5
    write_mosaic(tmp_path / "epi.dcm", volume)
    with open_dicom_frames(tmp_path / "epi.dcm") as frames:
        assert len(frames) == 1
        read = frames.frame(0)
    assert read.shape == (MOSAIC_SLICES, *TILE) and read.dicom_thickness_mm == pytest.approx(MOSAIC_THICKNESS)
    np.testing.assert_array_equal(read.array, volume)
    np.testing.assert_allclose(read.spacing, (MOSAIC_SPACING, *MOSAIC_PIXEL), rtol=1e-6)
    row, column = DIRECTION[:, 0], DIRECTION[:, 1]
    implied = ORIGIN + 2 * MOSAIC_SPACING * np.cross(row, column) + 3 * MOSAIC_PIXEL[0] * column \
        + 5 * MOSAIC_PIXEL[1] * row  # where the header puts that voxel
    index = np.unravel_index(np.argmax(read.array), read.shape)
    np.testing.assert_allclose(read.index_to_world(index), implied, atol=1e-4)
    np.testing.assert_allclose(read.origin, ORIGIN, atol=1e-4)
    for folder_read in (open_dicom_frames(tmp_path),):  # the folder holding it: the same 3D volume
        assert len(folder_read) == 1
        _assert_same(folder_read.frame(0), read)


def test_a_folder_of_mosaics_is_4d(tmp_path: Path) -> None:
    uids = {"study": generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    for acquisition, name in ((2, "c.dcm"), (3, "a.dcm"), (1, "b.dcm")):  # names in no order
        write_mosaic(tmp_path / "run" / name, np.full((MOSAIC_SLICES, *TILE), 100 * acquisition, np.uint16),
                     acquisition, uids)
    with open_dicom_frames(tmp_path / "run") as frames:
        assert len(frames) == 3 and frames.time.step == pytest.approx(2000.0) and frames.time.unit == "msec"
        assert [int(volume.array.max()) for volume in frames] == [100, 200, 300]
        np.testing.assert_allclose(frames.frame(1).origin, ORIGIN, atol=1e-4)


# --- dciodvfy ------------------------------------------------------------------------------------------------------

def _dciodvfy_errors(folder: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy is missing (apt-get install dicom3tools): CI checks every written series with it")
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools)")
    errors = []
    for path in sorted(folder.iterdir()):
        done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, errors="replace")
        errors += [f"{path.name}: {line}" for line in (done.stdout + done.stderr).splitlines()
                   if line.startswith("Error")]
    return errors


@pytest.mark.parametrize("tags", ["tpi", "acquisition"])  # gated (trigger times), not gated
def test_written_series_pass_dciodvfy(tmp_path: Path, tags: str) -> None:
    write_temporal_series(tmp_path / "source", cine(), tags)
    assert not _dciodvfy_errors(tmp_path / "source")  # the source is valid: every error would be the writer's
    with open_dicom_frames(tmp_path / "source") as source:
        with _sink(tmp_path / "4d", tmp_path / "source", source.time) as sink:
            for volume in source:
                sink.write(volume)
        write_dicom_series(source.frame(0), tmp_path / "3d", read_identity(tmp_path / "source"), 0, "x1", "test")
    assert not _dciodvfy_errors(tmp_path / "3d")
    assert not _dciodvfy_errors(tmp_path / "4d")
