"""Image IO keeps geometry; slice-axis and upsampled-grid geometry (tiny volumes in tmp_path)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_volume, rotation
from isrnet.errors import IsrnetError
from isrnet.imageio import Volume, read_volume, read_volumes, write_volume, write_volumes
from isrnet.imageio.geometry import (factor_of, is_near_isotropic, output_positions, restore_axes, slice_axis_of,
                                     slices_first, upsampled_grid, upsampled_volume)
from isrnet.imageio.reader_writer import to_sitk

OBLIQUE = rotation(0.3, 0.2, 0.1)
IMPROPER = OBLIQUE @ np.diag([1.0, -1.0, 1.0])  # orthonormal with determinant -1 (a flipped axis)


def _oblique(direction: np.ndarray = OBLIQUE) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.random((6, 7, 8)).astype(np.float32), (3.0, 0.7, 0.5), np.array([1.5, -2.0, 3.25]),
                  direction)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- reading and writing ----------------------------------------------------------------------

@pytest.mark.parametrize("ending", [".nii.gz", ".nrrd", ".nii", ".mha"])
@pytest.mark.parametrize("direction", [OBLIQUE, IMPROPER], ids=["rotation", "flipped"])
def test_round_trip_keeps_geometry(tmp_path: Path, ending: str, direction: np.ndarray) -> None:
    volume = _oblique(direction)
    read = read_volume(write_volume(volume, tmp_path / f"image{ending}"))
    np.testing.assert_array_equal(read.array, volume.array)
    np.testing.assert_allclose(read.spacing, volume.spacing, rtol=1e-6)
    np.testing.assert_allclose(read.origin, volume.origin, atol=1e-5)
    np.testing.assert_allclose(read.direction, volume.direction, atol=1e-6)
    assert _leftovers(tmp_path) == [f"image{ending}"]


@pytest.mark.parametrize("ending", [".nhdr", ".mhd"])
def test_detached_header_round_trip_leaves_no_partial_files(tmp_path: Path, ending: str) -> None:
    volume = _oblique()
    read = read_volume(write_volume(volume, tmp_path / f"image{ending}"))
    np.testing.assert_array_equal(read.array, volume.array)
    np.testing.assert_allclose(read.direction, volume.direction, atol=1e-6)
    assert not [name for name in _leftovers(tmp_path) if "partial" in name or name.startswith(".")]


def test_index_to_world_matches_simpleitk(tmp_path: Path) -> None:
    volume = _oblique()
    image = sitk.ReadImage(str(write_volume(volume, tmp_path / "image.nii.gz")))
    for index in [(0, 0, 0), (1, 2, 3), (5.0, 0.25, 7.5), (2.5, 6.0, 0.0)]:
        # numpy index (a0, a1, a2) is ITK continuous index (a2, a1, a0)
        expected = image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index[::-1]])
        np.testing.assert_allclose(volume.index_to_world(index), expected, atol=1e-5)
    assert volume.index_to_world(np.zeros((4, 2, 3))).shape == (4, 2, 3)


def test_to_sitk_matches_index_to_world() -> None:
    volume = _oblique(IMPROPER)
    image = to_sitk(volume)
    assert image.GetSize() == volume.shape[::-1]
    assert image.GetPixel(3, 2, 1) == pytest.approx(float(volume.array[1, 2, 3]))
    np.testing.assert_allclose(volume.index_to_world((1, 2, 3)), image.TransformIndexToPhysicalPoint((3, 2, 1)),
                               atol=1e-9)


def test_4d_file_reads_as_list_of_volumes(tmp_path: Path) -> None:
    volumes = [make_volume((5, 6, 7), (3.0, 0.7, 0.5), seed=s, origin=(1, 2, 3), direction=OBLIQUE)
               for s in range(3)]
    path = write_volumes(volumes, tmp_path / "series.nii.gz")
    assert sitk.ReadImage(str(path)).GetDimension() == 4
    read = read_volumes(path)
    assert len(read) == 3
    for original, back in zip(volumes, read):
        np.testing.assert_array_equal(back.array, original.array)
        np.testing.assert_allclose(back.spacing, original.spacing, rtol=1e-6)
        np.testing.assert_allclose(back.origin, original.origin, atol=1e-5)
        np.testing.assert_allclose(back.direction, original.direction, atol=1e-6)
    with pytest.raises(IsrnetError, match="4D"):
        read_volume(path)


def test_unsupported_ending_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(IsrnetError, match="image.png"):
        write_volume(_oblique(), tmp_path / "image.png")
    assert _leftovers(tmp_path) == []


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_volume(_oblique(), tmp_path / "image.nii.gz")
    before = path.read_bytes()

    def crash_half_way(image: sitk.Image, file_name: str, *args) -> None:
        Path(file_name).write_bytes(b"half an image")
        raise RuntimeError("ITK ERROR: disk full")

    monkeypatch.setattr(sitk, "WriteImage", crash_half_way)
    with pytest.raises(IsrnetError, match="could not be written.*disk full"):
        write_volume(_oblique(), tmp_path / "new.nii.gz")
    with pytest.raises(IsrnetError, match="could not be written"):
        write_volume(_oblique(), path)
    assert _leftovers(tmp_path) == ["image.nii.gz"]
    assert path.read_bytes() == before  # the old file is untouched


def test_overwrite_replaces_the_file(tmp_path: Path) -> None:
    path = write_volume(_oblique(), tmp_path / "image.nii.gz")
    write_volume(_oblique().with_array(np.ones((6, 7, 8), np.float32)), path)
    assert read_volume(path).array.min() == 1.0
    assert _leftovers(tmp_path) == ["image.nii.gz"]


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_file_is_an_error(tmp_path: Path, ending: str, keep: float) -> None:
    data = write_volume(make_volume((10, 16, 16), (3.0, 1.0, 1.0)), tmp_path / f"whole{ending}").read_bytes()
    truncated = tmp_path / f"truncated{ending}"
    truncated.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(IsrnetError, match="truncated"):
        read_volumes(truncated)


@pytest.mark.parametrize("ending", [".nii.gz", ".nii"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_nifti_voxels_are_an_error(tmp_path: Path, ending: str, bad: float, dtype: type) -> None:
    # ITK would silently read these voxels as zeros or arbitrary numbers
    array = make_volume((6, 8, 8), (3.0, 1.0, 1.0)).array.astype(dtype)
    array[3, 4, 4] = bad
    path = tmp_path / f"image{ending}"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    with pytest.raises(IsrnetError, match="NaN or Inf") as error:
        read_volumes(path)
    assert str(path) in str(error.value)


def test_non_finite_nrrd_voxels_are_kept(tmp_path: Path) -> None:
    array = np.ones((6, 8, 8), np.float32)
    array[1, 1, 1], array[2, 2, 2] = np.nan, np.inf
    read = read_volume(write_volume(Volume(array, (3.0, 1.0, 1.0)), tmp_path / "image.nrrd"))
    assert np.isnan(read.array[1, 1, 1]) and read.array[2, 2, 2] == np.inf


def test_integer_nifti_reads_unchanged(tmp_path: Path) -> None:
    array = np.arange(6 * 8 * 8, dtype=np.int16).reshape(6, 8, 8)
    read = read_volume(write_volume(Volume(array, (3.0, 1.0, 1.0)), tmp_path / "image.nii.gz"))
    assert read.array.dtype == np.int16
    np.testing.assert_array_equal(read.array, array)


def test_garbage_missing_and_2d_files_are_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"not an image" * 10)
    with pytest.raises(IsrnetError, match="garbage.nii.gz"):
        read_volumes(garbage)
    with pytest.raises(IsrnetError, match="no such file"):
        read_volumes(tmp_path / "missing.nii.gz")
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((10, 12), np.float32)), str(flat))
    with pytest.raises(IsrnetError, match="2D"):
        read_volumes(flat)
    single = tmp_path / "single.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((1, 10, 12), np.float32)), str(single))
    with pytest.raises(IsrnetError, match="2D"):
        read_volumes(single)


# --- slice axis, factor and the upsampled grid -------------------------------------------------

@pytest.mark.parametrize("spacing, axis, factor", [
    ((0.5, 0.5, 3.0), 2, 6.0),
    ((0.7, 3.0, 0.7), 1, 3.0 / 0.7),
    ((4.0, 0.9, 0.8), 0, 5.0),
    ((1.0, 1.0, 1.0), 2, 1.0),  # ties: the last axis
])
def test_slice_axis_and_factor(spacing: tuple, axis: int, factor: float) -> None:
    assert slice_axis_of(spacing) == axis
    assert factor_of(spacing) == pytest.approx(factor)
    assert factor_of(spacing, axis) == pytest.approx(factor)


@pytest.mark.parametrize("spacing, expected", [
    ((1.0, 1.0, 1.0), True), ((0.5, 0.5, 0.6), True), ((1.0, 1.2, 1.0), True), ((1.0, 1.0, 1.25), False),
    ((0.5, 0.5, np.float32(0.6)), True),  # float32 spacing from a file: 1.2000000477
])
def test_near_isotropic_limit(spacing: tuple, expected: bool) -> None:
    assert is_near_isotropic(tuple(float(s) for s in spacing)) is expected


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_first_and_back_keep_world_positions(axis: int) -> None:
    volume = _oblique()
    moved = slices_first(volume, axis)
    assert moved.shape[0] == volume.shape[axis]
    assert moved.spacing[0] == volume.spacing[axis]
    order = [axis] + [a for a in range(3) if a != axis]
    for index in itertools.product(*(range(0, n, 2) for n in volume.shape)):
        moved_index = tuple(index[a] for a in order)
        assert moved.array[moved_index] == volume.array[index]
        np.testing.assert_allclose(moved.index_to_world(moved_index), volume.index_to_world(index), atol=1e-9)
    back = restore_axes(moved, axis)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.spacing == volume.spacing
    np.testing.assert_allclose(back.direction, volume.direction)


def test_slices_first_survives_a_file_round_trip(tmp_path: Path) -> None:
    volume = slices_first(_oblique(), 2)
    read = read_volume(write_volume(volume, tmp_path / "moved.nii.gz"))
    for index in [(0, 0, 0), (7, 5, 6), (3, 1, 2)]:
        np.testing.assert_allclose(read.index_to_world(index), volume.index_to_world(index), atol=1e-5)


def test_output_positions_follow_grid_convention() -> None:
    np.testing.assert_allclose(output_positions(4, 2.0), [0, 0.5, 1, 1.5, 2, 2.5, 3])
    positions = output_positions(10, 3.0)
    assert len(positions) == 28  # j = 0 .. (Z-1) f
    for k in range(10):  # integer f: input slice k is output slice k*f
        assert positions[3 * k] == pytest.approx(k)
    real = output_positions(10, 3.0 / 0.7)
    assert len(real) == int(np.floor(9 * 3.0 / 0.7)) + 1
    np.testing.assert_allclose(real * 3.0, np.arange(len(real)) * 0.7)  # mm: j * s / f
    assert real[-1] <= 9.0
    with pytest.raises(ValueError):
        output_positions(10, 0.0)


def test_upsampled_volume_places_slices_in_the_world() -> None:
    volume = slices_first(_oblique(), 0)  # 6 slices of 3 mm
    grid = upsampled_grid(volume, 3.0)
    assert grid.spacing == pytest.approx((1.0, 0.7, 0.5))
    out = upsampled_volume(volume, np.zeros((len(grid.positions), 7, 8), np.float32), 3.0)
    assert out.shape == (16, 7, 8)
    for k in range(volume.shape[0]):
        np.testing.assert_allclose(out.index_to_world((3 * k, 2, 5)), volume.index_to_world((k, 2, 5)), atol=1e-9)
    with pytest.raises(ValueError):
        upsampled_volume(volume, np.zeros((15, 7, 8), np.float32), 3.0)
