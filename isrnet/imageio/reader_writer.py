"""Reading and writing volumes (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK.

The only module that translates between SimpleITK's geometry (index order x, y, z) and `Volume`
(geometry per numpy array axis). Writes are atomic: the image is written into a hidden temporary folder
beside the target and moved into place once complete, so a crash never leaves a half-written image under
the final name. NIfTI input is also checked with nibabel, because ITK silently zero-fills truncated files
and mangles NaN/Inf voxels.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from isrnet.errors import IsrnetError
from isrnet.imageio.formats import IMAGE_ENDINGS, image_ending, is_dicom_folder
from isrnet.imageio.volume import Volume

_SLICE_THICKNESS_TAG = "0018|0050"


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


def _read_dicom_series(folder: Path) -> tuple[sitk.Image, float | None]:
    reader = sitk.ImageSeriesReader()
    files = dicom_series_files(folder)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    thickness = None
    if reader.HasMetaDataKey(0, _SLICE_THICKNESS_TAG):
        try:
            thickness = float(reader.GetMetaData(0, _SLICE_THICKNESS_TAG).strip())
        except ValueError:
            thickness = None
    return image, thickness


def _check_nifti(path: Path) -> None:
    """What ITK does not check: it reads a truncated NIfTI file without error (missing voxels become
    zeros) and turns NaN/Inf voxels into zeros or arbitrary numbers."""
    import nibabel  # imported here: only NIfTI files need the check
    from nibabel.filebasedimages import ImageFileError

    try:
        voxels = nibabel.load(str(path)).dataobj.get_unscaled()  # reads every stored voxel
    except (EOFError, OSError, zlib.error, ValueError, ImageFileError) as error:
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise IsrnetError(f"{path}: cannot be read, the file is truncated or corrupt ({detail})") from None
    if np.issubdtype(voxels.dtype, np.floating) and not np.isfinite(voxels).all():
        raise IsrnetError(f"{path}: contains NaN or Inf voxels; fix or remove this case")


def read_volumes(path: str | Path) -> list[Volume]:
    """Read a 3D or 4D image; a 4D image gives one Volume per 3D volume (all sharing geometry).

    Raises IsrnetError (naming the file) for missing, unreadable, truncated, 2D or 5D+ input.
    """
    path = Path(path)
    if not path.exists():
        raise IsrnetError(f"{path}: no such file or folder")
    thickness = None
    try:
        if path.is_dir():
            if not is_dicom_folder(path):
                raise IsrnetError(f"{path}: folder holds no DICOM files (expected one DICOM series "
                                  f"per folder, or an image file ending in {', '.join(IMAGE_ENDINGS)})")
            image, thickness = _read_dicom_series(path)
        else:
            if image_ending(path) is None and path.suffix.lower() != ".dcm":
                raise IsrnetError(f"{path}: unsupported format; use one of {', '.join(IMAGE_ENDINGS)} "
                                  f"or a folder holding one DICOM series")
            image = sitk.ReadImage(str(path))
            if image_ending(path) in (".nii", ".nii.gz"):
                _check_nifti(path)
    except RuntimeError as error:
        lines = str(error).strip().splitlines()  # the first line only names SimpleITK's source file
        detail = next((line for line in lines if "ERROR" in line), lines[-1] if lines else "")
        raise IsrnetError(f"{path}: cannot be read, the file may be truncated or corrupt "
                          f"({detail.strip()[:200]})") from None
    dimension = image.GetDimension()
    if dimension == 2 or (dimension == 3 and min(image.GetSize()) == 1):
        raise IsrnetError(f"{path}: is a 2D image; isrnet needs a 3D stack of slices "
                          f"(put all slices of a series in one folder)")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise IsrnetError(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
                          f"isrnet needs a scalar (greyscale) image")
    if dimension == 3:
        return [from_sitk(image, thickness)]
    if dimension == 4:
        volumes = []
        size = list(image.GetSize())
        for t in range(size[3]):
            extractor = sitk.ExtractImageFilter()
            extractor.SetSize(size[:3] + [0])
            extractor.SetIndex([0, 0, 0, t])
            volumes.append(from_sitk(extractor.Execute(image), thickness))
        return volumes
    raise IsrnetError(f"{path}: {dimension}D images are not supported (3D or 4D only)")


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
                  compress: bool = True) -> Path:
    """Write one Volume (3D) or several (4D, same geometry) atomically; returns the path written."""
    path = Path(path)
    if image_ending(path) is None:
        raise IsrnetError(f"{path}: cannot write this format; use one of {', '.join(IMAGE_ENDINGS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(volumes) == 1:
        image = to_sitk(volumes[0] if dtype is None else volumes[0].with_array(volumes[0].array.astype(dtype)))
    else:
        arrays = [v.array if dtype is None else v.array.astype(dtype) for v in volumes]
        image = sitk.JoinSeries([to_sitk(volumes[0].with_array(a)) for a in arrays])
    try:
        _write_atomically(image, path, compress)
    except (RuntimeError, OSError) as error:
        raise IsrnetError(f"{path}: could not be written ({str(error).strip().splitlines()[-1][:200]})") from None
    return path


def write_volume(volume: Volume, path: str | Path, dtype: np.dtype | str | None = None) -> Path:
    """Write one 3D volume atomically."""
    return write_volumes([volume], path, dtype)
