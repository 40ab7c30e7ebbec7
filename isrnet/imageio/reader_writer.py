"""Reading and writing volumes (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK.

The only module that translates between SimpleITK's geometry (index order x, y, z) and `Volume`
(geometry per numpy array axis). Writes are atomic: the image is written into a hidden temporary folder
beside the target and moved into place once complete, so a crash never leaves a half-written image under
the final name. NIfTI input is also checked with nibabel, because ITK silently zero-fills truncated files
and mangles NaN/Inf voxels.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from isrnet.errors import IsrnetError
from isrnet.imageio.formats import IMAGE_ENDINGS, image_ending, is_dicom_file, is_dicom_folder
from isrnet.imageio.time_series import TIME_UNITS, FrameSink, FrameSource, FramesInMemory, TimeAxis
from isrnet.imageio.volume import Volume



def from_sitk(image: sitk.Image, dicom_thickness_mm: float | None = None) -> Volume:
    array = sitk.GetArrayFromImage(image)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)[:, ::-1]
    return Volume(array, tuple(image.GetSpacing())[::-1], np.asarray(image.GetOrigin()),
                  direction, dicom_thickness_mm)


def to_sitk(volume: Volume) -> sitk.Image:
    """SimpleITK image with the volume's geometry."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array))
    image.SetSpacing(tuple(float(s) for s in volume.spacing[::-1]))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in volume.direction[:, ::-1].ravel()))
    return image


def dicom_series_files(folder: Path) -> tuple[str, ...]:
    """The files of the series in `folder` that isrnet reads: the one with the most files (localisers and other
    small series beside it are ignored)."""
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder)) if Path(folder).is_dir() else ()
    if not series:
        raise IsrnetError(f"{folder}: no DICOM series found in this folder")
    return max((reader.GetGDCMSeriesFileNames(str(folder), s) for s in series), key=len)


def _nifti_voxels(path: Path, read: Callable[[], np.ndarray], part: str = "") -> np.ndarray:
    """Voxels `read` from a NIfTI file (`part`: which, e.g. 'frame 2 of 9 '), refusing what ITK does not check: it
    reads a truncated NIfTI file without error (missing voxels become zeros) and turns NaN/Inf voxels into zeros
    or arbitrary numbers."""
    from nibabel.filebasedimages import ImageFileError  # imported here: only NIfTI files need the check

    try:
        voxels = read()
    except (EOFError, OSError, zlib.error, ValueError, ImageFileError) as error:
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise IsrnetError(f"{path}: {part}cannot be read, the file is truncated or corrupt ({detail[:200]})") from None
    if np.issubdtype(voxels.dtype, np.floating) and not np.isfinite(voxels).all():
        raise IsrnetError(f"{path}: {part}contains NaN or Inf voxels; fix or remove this case")
    return voxels


def _check_nifti(path: Path) -> None:
    """Every stored voxel of a 3D NIfTI file read once, for `_nifti_voxels`' checks."""
    import nibabel

    _nifti_voxels(path, lambda: nibabel.load(str(path)).dataobj.get_unscaled())


def sitk_read_error(path: object, error: RuntimeError) -> IsrnetError:
    """SimpleITK's read error as one line naming `path`."""
    lines = str(error).strip().splitlines()  # the first line only names SimpleITK's source file
    detail = next((line for line in lines if "ERROR" in line), lines[-1] if lines else "")
    return IsrnetError(f"{path}: cannot be read, the file may be truncated or corrupt ({detail.strip()[:200]})")


def check_image_shape(path: object, dimension: int, size: tuple[int, ...], components: int) -> None:
    """Refuse what isrnet cannot super-resolve: 2D, 5D+ and multi-component images."""
    if dimension == 2 or (dimension == 3 and min(size) == 1):
        raise IsrnetError(f"{path}: is a 2D image; isrnet needs a 3D stack of slices "
                          f"(put all slices of a series in one folder)")
    if components != 1:
        raise IsrnetError(f"{path}: has {components} components per voxel; isrnet needs a scalar (greyscale) image")
    if dimension not in (3, 4):
        raise IsrnetError(f"{path}: {dimension}D images are not supported (3D or 4D only)")


def _check_readable_path(path: Path) -> None:
    if not path.exists():
        raise IsrnetError(f"{path}: no such file or folder")
    if path.is_dir():
        if not is_dicom_folder(path):
            raise IsrnetError(f"{path}: folder holds no DICOM files (expected one DICOM series "
                              f"per folder, or an image file ending in {', '.join(IMAGE_ENDINGS)})")
    elif image_ending(path) is None and not is_dicom_file(path):
        raise IsrnetError(f"{path}: unsupported format; use one of {', '.join(IMAGE_ENDINGS)} "
                          f"or a folder holding one DICOM series")


class NiftiFrames(FrameSource):
    """A 4D NIfTI file read one frame at a time: the geometry as SimpleITK reads it (so a frame equals the same
    volume written as a 3D file), the voxels through nibabel, whose open file reads a .nii.gz in one pass when
    the frames are taken in order."""

    def __init__(self, path: Path, geometry: sitk.ImageFileReader) -> None:
        import nibabel

        self.path, self.name = path, path.name
        try:
            self._image = nibabel.load(str(path), keep_file_open=True)
        except Exception as error:  # nibabel raises several types for damaged headers
            raise IsrnetError(f"{path}: cannot be read ({str(error).strip()[:200]})") from None
        size = geometry.GetSize()
        direction = np.asarray(geometry.GetDirection(), dtype=np.float64).reshape(4, 4)[:3, :3]
        self._spacing = tuple(geometry.GetSpacing()[:3])[::-1]
        self._origin = np.asarray(geometry.GetOrigin()[:3])
        self._direction = direction[:, ::-1]
        header = self._image.header
        unit = header.get_xyzt_units()[1]
        self.time = TimeAxis(int(size[3]), float(header["pixdim"][4]) or None,
                             unit if unit in TIME_UNITS else "sec")

    def frame(self, index: int) -> Volume:
        if not 0 <= index < len(self):
            raise IndexError(index)
        voxels = _nifti_voxels(self.path, lambda: np.asarray(self._image.dataobj[..., index]),
                               f"frame {index + 1} of {len(self)} ")
        if voxels.dtype == np.float64 and self._image.get_data_dtype() != np.float64:
            voxels = voxels.astype(np.float32)  # scaled integers, as SimpleITK reads them
        return Volume(np.ascontiguousarray(voxels.T), self._spacing, self._origin.copy(), self._direction.copy())

    def close(self) -> None:
        self._image.uncache()
        opener = getattr(self._image.dataobj, "_opener", None)
        if opener is not None:
            opener.close_if_mine()


def open_frames(path: str | Path) -> FrameSource:
    """Open a 3D or 4D image (file, DICOM series folder, Siemens mosaic file) for reading frame by frame.

    4D NIfTI and DICOM are read a frame at a time; other 4D formats are read whole. Raises IsrnetError (naming
    the file) for missing, unreadable, 2D or 5D+ input; a frame that turns out truncated is refused when read.
    """
    path = Path(path)
    _check_readable_path(path)
    if path.is_dir() or (image_ending(path) is None and is_dicom_file(path)):
        from isrnet.imageio.dicom_reading import open_dicom_frames  # imported here: that module imports this one

        return open_dicom_frames(path)
    info = sitk.ImageFileReader()
    info.SetFileName(str(path))
    try:
        info.ReadImageInformation()
    except RuntimeError as error:
        raise sitk_read_error(path, error) from None
    check_image_shape(path, info.GetDimension(), info.GetSize(), info.GetNumberOfComponents())
    if info.GetDimension() == 4 and image_ending(path) in (".nii", ".nii.gz"):
        return NiftiFrames(path, info)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise sitk_read_error(path, error) from None
    if image_ending(path) in (".nii", ".nii.gz"):
        _check_nifti(path)
    if image.GetDimension() == 3:
        return FramesInMemory([from_sitk(image)], name=path.name)
    size = list(image.GetSize())
    volumes = []
    for t in range(size[3]):
        extractor = sitk.ExtractImageFilter()
        extractor.SetSize(size[:3] + [0])
        extractor.SetIndex([0, 0, 0, t])
        volumes.append(from_sitk(extractor.Execute(image)))
    return FramesInMemory(volumes, TimeAxis(len(volumes), float(image.GetSpacing()[3]) or None), path.name)


def read_volumes(path: str | Path) -> list[Volume]:
    """Read a 3D or 4D image whole; a 4D image gives one Volume per frame (all sharing geometry). Prefer
    `open_frames` for time series: it holds one frame at a time.

    Raises IsrnetError (naming the file) for missing, unreadable, truncated, 2D or 5D+ input.
    """
    with open_frames(path) as frames:
        return list(frames)


def read_volume(path: str | Path) -> Volume:
    """Read one 3D volume; a 4D file is an error here (use `read_volumes`)."""
    volumes = read_volumes(path)
    if len(volumes) != 1:
        raise IsrnetError(f"{path}: is a 4D image with {len(volumes)} volumes; split it into 3D files "
                          f"(one case per volume) for this step")
    return volumes[0]


def _write_atomically(image: sitk.Image, path: Path, compress: bool) -> None:
    """Write into a hidden folder beside `path` under the final name, then move into place.

    Detached data files (.nhdr/.mhd) keep the name their header refers to; they are moved first and
    the header (or single file) last, so no complete-looking file exists before the data is there.
    """
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial", dir=path.parent))
    try:
        sitk.WriteImage(image, str(temporary / path.name), compress)
        for written in temporary.iterdir():
            if written.name != path.name:
                os.replace(written, path.with_name(written.name))
        os.replace(temporary / path.name, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def write_volumes(volumes: list[Volume], path: str | Path, dtype: np.dtype | str | None = None,
                  compress: bool = True, time_step_seconds: float | None = None) -> Path:
    """Write one Volume (3D) or several (4D, same geometry, `time_step_seconds` apart) atomically; returns the
    path written."""
    path = Path(path)
    if image_ending(path) is None:
        raise IsrnetError(f"{path}: cannot write this format; use one of {', '.join(IMAGE_ENDINGS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(volumes) == 1:
        image = to_sitk(volumes[0] if dtype is None else volumes[0].with_array(volumes[0].array.astype(dtype)))
    else:
        arrays = [v.array if dtype is None else v.array.astype(dtype) for v in volumes]
        image = sitk.JoinSeries([to_sitk(volumes[0].with_array(a)) for a in arrays], 0.0, time_step_seconds or 1.0)
    try:
        _write_atomically(image, path, compress)
    except (RuntimeError, OSError) as error:
        raise IsrnetError(f"{path}: could not be written ({str(error).strip().splitlines()[-1][:200]})") from None
    return path


def _nifti_affine(volume: Volume) -> np.ndarray:
    """The NIfTI (RAS) affine of a Volume's geometry, in NIfTI's voxel order (ITK's index order)."""
    itk_direction = volume.direction[:, ::-1] * np.asarray(volume.spacing[::-1])
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ itk_direction  # LPS -> RAS
    affine[:3, 3] = np.diag([-1.0, -1.0, 1.0]) @ volume.origin
    return affine


class NiftiFrameSink(FrameSink):
    """A 4D NIfTI file written frame by frame into a hidden file beside the target, renamed into place on
    `commit`. The header (geometry, frame count, time step and unit) is written first; every frame must have the
    first frame's geometry."""

    def __init__(self, path: Path, time: TimeAxis, dtype: str = "float32", compress: bool = True) -> None:
        self.path, self.time, self.dtype = path, time, np.dtype(dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.partial", dir=path.parent)
        os.close(handle)
        self._temporary = Path(name)
        self._file = gzip.open(self._temporary, "wb", compresslevel=6) if image_ending(path) == ".nii.gz" \
            else open(self._temporary, "wb")
        self._first: Volume | None = None
        self._written = 0

    def _header(self, volume: Volume) -> bytes:
        import nibabel

        header = nibabel.Nifti1Header()
        header.set_data_dtype(self.dtype)
        header.set_data_shape(volume.shape[::-1] + (self.time.frames,))
        affine = _nifti_affine(volume)
        header.set_qform(affine, code=1)
        header.set_sform(affine, code=1)
        header.set_xyzt_units("mm", self.time.unit)
        header["pixdim"][4] = self.time.step if self.time.step is not None else 1.0
        header["descrip"] = b"isrnet"
        buffer = io.BytesIO()
        header.write_to(buffer)
        return buffer.getvalue()

    def write(self, volume: Volume) -> None:
        if self._written >= self.time.frames:
            raise IsrnetError(f"{self.path}: more than the {self.time.frames} frames announced")
        if self._first is None:
            self._first = volume
            self._file.write(self._header(volume))
        elif volume.shape != self._first.shape or not np.allclose(volume.spacing, self._first.spacing):
            raise IsrnetError(f"{self.path}: frame {self._written + 1} has shape {volume.shape}, the first "
                              f"{self._first.shape}; every frame of a 4D image needs the same grid")
        self._file.write(np.ascontiguousarray(volume.array, dtype=self.dtype).tobytes())
        self._written += 1

    def commit(self) -> None:
        self._file.close()
        if self._written != self.time.frames:
            self.abort()
            raise IsrnetError(f"{self.path}: {self._written} of {self.time.frames} frames were written; "
                              f"nothing was saved")
        os.replace(self._temporary, self.path)

    def abort(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)


class FramesHeldSink(FrameSink):
    """Frames kept in memory and written whole on `commit` (3D images, and 4D formats other than NIfTI)."""

    def __init__(self, path: Path, time: TimeAxis, dtype: str = "float32", compress: bool = True) -> None:
        self.path, self.time, self.dtype, self.compress = path, time, dtype, compress
        self.volumes: list[Volume] = []

    def write(self, volume: Volume) -> None:
        self.volumes.append(volume.with_array(np.asarray(volume.array, dtype=self.dtype)))

    def commit(self) -> None:
        write_volumes(self.volumes, self.path, compress=self.compress, time_step_seconds=self.time.step_seconds)

    def abort(self) -> None:
        self.volumes.clear()


def open_frame_sink(path: str | Path, time: TimeAxis, dtype: str = "float32", compress: bool = True) -> FrameSink:
    """A writer for an image of `time.frames` frames at `path`: 4D NIfTI is streamed to disk frame by frame,
    anything else is written whole on commit. Nothing exists under `path` before `commit`."""
    path = Path(path)
    if image_ending(path) is None:
        raise IsrnetError(f"{path}: cannot write this format; use one of {', '.join(IMAGE_ENDINGS)}")
    if time.frames > 1 and image_ending(path) in (".nii", ".nii.gz"):
        return NiftiFrameSink(path, time, dtype, compress)
    return FramesHeldSink(path, time, dtype, compress)


def write_volume(volume: Volume, path: str | Path, dtype: np.dtype | str | None = None) -> Path:
    """Write one 3D volume atomically."""
    return write_volumes([volume], path, dtype)
