"""Dataset converters on tiny files written by the tests (never the real packaged files)."""
from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from isrnet.datasets import list_cases, list_clips, load_dataset_info
from isrnet.errors import IsrnetError
from isrnet.imageio.reader_writer import read_volume, write_volume
from isrnet.imageio.video import read_frame_folder
from isrnet.imageio.volume import Volume
from dataset_conversion import demo_brain
from dataset_conversion.acquisition import fit_to_step, simulate_acquisition, superior_inferior_axis
from dataset_conversion.cli import main
from dataset_conversion.generic_folder import convert_folder
from dataset_conversion.ixi import convert_ixi
from dataset_conversion.packaged_data import debian_file, packaged_file, sdist_file, source_file
from dataset_conversion.resampling import block_average, resample_isotropic
from dataset_conversion.scene_cuts import detect_scene_cuts, split_at_cuts
from dataset_conversion.staging import build_dataset, write_dataset_json
from dataset_conversion.video_frames import convert_reds, convert_vimeo


@pytest.fixture
def raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "raw"
    monkeypatch.setenv("isrnet_raw", str(folder))
    monkeypatch.setenv("ISRNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ISRNET_WHEEL_CACHE", str(tmp_path / "wheels"))
    return folder


def _rotation(a: float, b: float) -> np.ndarray:
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _oblique_volume(shape=(12, 14, 33), spacing=(0.9, 0.8, 1.0)) -> Volume:
    """Array axis 2 points (nearly) superior: the columns of `direction` are the axes' world vectors."""
    axes = np.array([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]]).T  # axis 0 -> R, 1 -> A, 2 -> S
    rng = np.random.default_rng(0)
    return Volume(rng.random(shape).astype(np.float32), spacing, np.array([10.0, -20.0, 5.0]),
                  _rotation(0.2, 0.15) @ axes)


# --- geometry of the thick-slice simulation used by the demo -------------------------------------

def test_superior_inferior_axis_follows_direction() -> None:
    volume = _oblique_volume()
    assert superior_inferior_axis(volume) == 2
    assert superior_inferior_axis(volume.transposed([2, 0, 1])) == 0


def test_simulated_lr_slice_k_lies_at_hr_slice_4k() -> None:
    hr = _oblique_volume()
    axis = superior_inferior_axis(hr)
    lr = simulate_acquisition(hr, axis, step=4, thickness_voxels=4.0, profile="gaussian", offset=0)
    assert lr.shape == (12, 14, 9)
    assert lr.spacing == (0.9, 0.8, 4.0)
    assert lr.dicom_thickness_mm == pytest.approx(4.0)
    np.testing.assert_allclose(lr.origin, hr.origin)
    np.testing.assert_allclose(lr.direction, hr.direction)
    for k in range(lr.shape[axis]):
        np.testing.assert_allclose(lr.index_to_world([3, 5, k]), hr.index_to_world([3, 5, 4 * k]), atol=1e-9)
    thin = simulate_acquisition(hr, axis, step=4, thickness_voxels=0.0, profile="none")
    np.testing.assert_array_equal(thin.array, hr.array[:, :, ::4])


def test_simulated_lr_with_offset_moves_origin() -> None:
    hr = _oblique_volume()
    lr = simulate_acquisition(hr, 2, step=4, thickness_voxels=4.0, offset=2)
    np.testing.assert_allclose(lr.index_to_world([0, 0, 1]), hr.index_to_world([0, 0, 6]), atol=1e-9)


def test_block_average_puts_voxels_at_block_centres() -> None:
    fine = _oblique_volume(shape=(9, 10, 11), spacing=(0.5, 0.5, 0.5))
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in fine.shape], indexing="ij"), axis=-1)
    world = fine.index_to_world(grid)
    fine = fine.with_array((world @ np.array([1.0, -2.0, 0.5])).astype(np.float32))  # linear in world
    coarse = block_average(fine, 2)
    assert coarse.shape == (4, 5, 5) and coarse.spacing == (1.0, 1.0, 1.0)
    coarse_grid = np.stack(np.meshgrid(*[np.arange(n) for n in coarse.shape], indexing="ij"), axis=-1)
    expected = coarse.index_to_world(coarse_grid) @ np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(coarse.array, expected, atol=1e-3)


def test_fit_to_step_keeps_step_times_m_plus_one_slices() -> None:
    volume = _oblique_volume(shape=(4, 4, 35))
    assert fit_to_step(volume, 2, 4).shape == (4, 4, 33)
    np.testing.assert_allclose(fit_to_step(volume, 2, 4).origin, volume.origin)


def test_demo_converter_writes_exact_geometry(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = (40, 44, 36)  # 0.5 mm, axis 0 superior (as in deepmriprep's template)
    array = np.zeros(shape, dtype=np.float32)
    array[6:34, 8:36, 6:30] = 1.0
    direction = np.array([[0.0, 0, -1], [0, -1, 0], [1, 0, 0]])
    template = Volume(array, (0.5, 0.5, 0.5), np.array([84.0, 120.0, -72.0]), direction)
    source = write_volume(template, tmp_path / "template.nii.gz")
    monkeypatch.setattr(demo_brain, "packaged_file", lambda *args: source)
    folder = demo_brain.convert_demo_brain()
    info = load_dataset_info(folder)
    assert (info.kind, info.thickness_for("DemoBrain"), info.file_ending) == ("target", None, ".nii.gz")  # planning estimates it
    assert info.extra["simulated_acquisition"]["DemoBrain"] == {"thickness_mm": 4.0, "family": "gaussian",
                                                                "slice_spacing_mm": 4.0}
    lr = read_volume(folder / "imagesTr" / "DemoBrain.nii.gz")
    hr = read_volume(folder / "referenceTr" / "DemoBrain.nii.gz")
    assert lr.array.dtype == np.float32 and hr.array.dtype == np.float32
    assert hr.spacing == pytest.approx((1.0, 1.0, 1.0)) and lr.spacing == pytest.approx((4.0, 1.0, 1.0))
    assert (hr.shape[0] - 1) % 4 == 0 and lr.shape[0] == (hr.shape[0] - 1) // 4 + 1
    assert lr.shape[1:] == hr.shape[1:]
    for k in range(lr.shape[0]):
        np.testing.assert_allclose(lr.index_to_world([k, 2, 3]), hr.index_to_world([4 * k, 2, 3]), atol=1e-4)
    # the 1 mm voxel (0, 0, 0) of the uncropped grid is the centre of fine voxels 0..1 on every axis
    steps = np.linalg.solve(hr.direction, hr.origin - template.index_to_world([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert demo_brain.convert_demo_brain() == folder  # kept, not rebuilt


# --- staging ---------------------------------------------------------------------------------------

def test_build_dataset_is_atomic_and_keeps_existing(raw: Path) -> None:
    def fill(folder: Path) -> None:
        write_dataset_json(folder, "A", "target", ".nii.gz", 0, "d", "l")
        (folder / "marker").write_text("1")

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise IsrnetError("boom")

    folder = build_dataset("Dataset010_A", fill)
    (folder / "marker").write_text("old")
    assert build_dataset("Dataset010_A", fill) == folder and (folder / "marker").read_text() == "old"
    with pytest.raises(IsrnetError, match="boom"):
        build_dataset("Dataset010_A", broken, overwrite=True)
    assert (folder / "marker").read_text() == "old"
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset010_A"]
    build_dataset("Dataset010_A", fill, overwrite=True)
    assert (folder / "marker").read_text() == "1"
    with pytest.raises(IsrnetError, match="already used by Dataset010_A"):
        build_dataset("Dataset010_B", fill)


# --- data users bring --------------------------------------------------------------------------------

def _write_dicom_series(folder: Path, array: np.ndarray, pixel_spacing: float, slice_spacing: float,
                        thickness: float, origin=(-50.0, -40.0, 10.0)) -> None:
    """One file per slice, as a scanner writes them (ImagePositionPatient, SliceThickness, ...)."""
    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(array.astype(np.int16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid = "1.2.826.0.1.3680043.8.498.1"
    for k in range(array.shape[0]):
        item = image[:, :, k]
        item.SetSpacing((pixel_spacing, pixel_spacing))
        position = (origin[0], origin[1], origin[2] + k * slice_spacing)
        tags = {"0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4", "0008|0018": f"{uid}.3.{k + 1}",
                "0020|000d": f"{uid}.1", "0020|000e": f"{uid}.2", "0020|0052": f"{uid}.4",
                "0020|0037": "1\\0\\0\\0\\1\\0", "0020|0032": "\\".join(f"{p:g}" for p in position),
                "0020|0013": str(k + 1), "0018|0050": f"{thickness:g}", "0018|0088": f"{slice_spacing:g}"}
        for tag, value in tags.items():
            item.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(item)


def test_generic_folder_nifti_nrrd_and_dicom(raw: Path, tmp_path: Path) -> None:
    source = tmp_path / "scans"
    rng = np.random.default_rng(1)
    write_volume(Volume(rng.random((5, 8, 9)).astype(np.float32), (3.0, 1.0, 1.0)), source / "knee_a.nii.gz")
    write_volume(Volume(rng.random((6, 8, 9)).astype(np.float32), (4.0, 0.5, 0.5), np.array([1.0, 2, 3])),
                 source / "knee_b.nrrd")
    _write_dicom_series(source / "patient1" / "series7", rng.integers(0, 900, (6, 10, 12)), 0.8, 2.5, 3.0)
    folder = convert_folder(source, 20, "Knees")
    assert folder.name == "Dataset020_Knees"
    cases = list_cases(folder / "imagesTr")
    assert sorted(cases) == ["knee_a", "knee_b", "patient1_series7"]
    assert all(p.name.endswith(".nii.gz") for p in cases.values())
    dicom = read_volume(cases["patient1_series7"])
    assert dicom.shape == (6, 10, 12)
    assert dicom.spacing == pytest.approx((2.5, 0.8, 0.8))
    np.testing.assert_allclose(dicom.origin, [-50.0, -40.0, 10.0], atol=1e-4)
    nrrd = read_volume(cases["knee_b"])
    assert nrrd.spacing == pytest.approx((4.0, 0.5, 0.5))
    np.testing.assert_allclose(nrrd.origin, [1.0, 2.0, 3.0])
    info = load_dataset_info(folder)
    assert info.kind == "target"
    assert info.thickness_for("patient1_series7") is None  # a header fact is not the user's word: planning checks it is plausible
    assert info.dicom_thickness_for("patient1_series7") == 3.0 and info.dicom_thickness_for("knee_a") is None


def test_generic_folder_that_is_one_dicom_series(raw: Path, tmp_path: Path) -> None:
    _write_dicom_series(tmp_path / "ser", np.arange(4 * 6 * 5).reshape(4, 6, 5), 1.0, 5.0, 4.0)
    folder = convert_folder(tmp_path / "ser", 21, "One", thickness_mm=5.0)
    assert list(list_cases(folder / "imagesTr")) == ["ser"]
    assert load_dataset_info(folder).thickness_for("any case") == 5.0


def test_generic_folder_video_is_split_at_cuts(raw: Path, tmp_path: Path) -> None:
    clip = tmp_path / "videos" / "walk"
    clip.mkdir(parents=True)
    for t in range(10):
        frame = np.full((12, 16), 30 if t < 6 else 220, np.uint8) + t
        Image.fromarray(frame).save(clip / f"{t:03d}.png")
    folder = convert_folder(tmp_path / "videos", 22, "Mine", kind="video")
    clips = list_clips(folder / "imagesTr")
    assert sorted(clips) == ["walk_00", "walk_01"]
    assert read_frame_folder(clips["walk_00"]).shape == (6, 12, 16)
    assert load_dataset_info(folder).kind == "video"


def test_generic_folder_errors(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(IsrnetError, match="holds no images"):
        convert_folder(tmp_path / "empty", 23, "E")
    with pytest.raises(IsrnetError, match="dataset name"):
        convert_folder(tmp_path / "empty", 23, "bad name")


def test_ixi_picks_one_contrast_and_resamples(raw: Path, tmp_path: Path) -> None:
    source = tmp_path / "IXI-T1"
    rng = np.random.default_rng(2)
    for case in ("IXI002-Guys-0828", "IXI012-HH-1211"):
        for contrast in ("T1", "T2"):
            volume = Volume((rng.random((10, 16, 16)) * 1000).astype(np.int16), (1.2, 0.9375, 0.9375))
            write_volume(volume, source / f"{case}-{contrast}.nii.gz")
    folder = convert_ixi(source, 30)
    assert folder.name == "Dataset030_IXIT1" and load_dataset_info(folder).kind == "hr_mr"
    assert sorted(list_cases(folder / "imagesTr")) == ["IXI002-Guys-0828", "IXI012-HH-1211"]
    iso = read_volume(convert_ixi(source, 31, contrast="T2", resample_isotropic=True) /
                      "imagesTr" / "IXI002-Guys-0828.nii.gz")
    assert iso.spacing == pytest.approx((0.9375,) * 3)
    assert iso.shape == (12, 16, 16)
    assert 0 <= iso.array.min() and iso.array.max() <= 1000


def test_resample_isotropic_keeps_linear_ramp() -> None:
    volume = Volume(np.tile(np.arange(6, dtype=np.float32)[:, None, None], (1, 4, 4)), (2.0, 1.0, 1.0))
    iso = resample_isotropic(volume, bspline=False)
    assert iso.shape == (11, 4, 4)
    np.testing.assert_allclose(iso.array[:, 1, 1], np.arange(11) / 2.0, atol=1e-5)


def _png_clip(folder: Path, names: list[str], size=(20, 24)) -> None:
    folder.mkdir(parents=True)
    for t, name in enumerate(names):
        rgb = np.zeros(size + (3,), np.uint8)
        rgb[..., 0] = 10 * t
        rgb[..., 1] = 100
        Image.fromarray(rgb).save(folder / name)


def test_reds_layout(raw: Path, tmp_path: Path) -> None:
    for clip in ("000", "001"):
        _png_clip(tmp_path / "REDS" / "train" / "train_sharp" / clip, [f"{t:08d}.png" for t in range(5)])
    folder = convert_reds(tmp_path / "REDS", 40, max_side=12)
    clips = list_clips(folder / "imagesTr")
    assert sorted(clips) == ["reds_000", "reds_001"]
    frames = sorted(clips["reds_000"].iterdir())
    assert [p.name for p in frames] == [f"frame_{t:04d}.png" for t in range(5)]
    with Image.open(frames[0]) as image:
        assert image.mode == "L" and image.size == (12, 10)
    assert load_dataset_info(folder).kind == "video"


def test_vimeo_layout_with_list(raw: Path, tmp_path: Path) -> None:
    root = tmp_path / "vimeo_septuplet"
    for clip in ("00001/0001", "00001/0002", "00002/0001"):
        _png_clip(root / "sequences" / clip, [f"im{t}.png" for t in range(1, 8)])
    folder = convert_vimeo(root, 41)
    assert sorted(list_clips(folder / "imagesTr")) == ["00001_0001", "00001_0002", "00002_0001"]
    (root / "sep_trainlist.txt").write_text("00001/0002\n00002/0001\n\n")
    folder = convert_vimeo(root, 41, overwrite=True)
    clips = list_clips(folder / "imagesTr")
    assert sorted(clips) == ["00001_0002", "00002_0001"]
    frames = read_frame_folder(clips["00002_0001"])
    assert frames.shape == (7, 20, 24)
    expected = np.asarray(Image.open(root / "sequences/00002/0001/im3.png").convert("L"), np.float32) / 255
    np.testing.assert_allclose(frames[2], expected, atol=1e-6)


def test_scene_cuts() -> None:
    frames = np.concatenate([np.full((5, 8, 8), 0.2), np.full((4, 8, 8), 0.8)]).astype(np.float32)
    frames += np.linspace(0, 0.02, 9, dtype=np.float32)[:, None, None]
    assert detect_scene_cuts(frames) == [5]
    assert split_at_cuts(250, [30, 76, 0, 250]) == [(0, 30), (30, 76), (76, 250)]


# --- packaged data lookup (no network: download=False) -----------------------------------------------

def test_packaged_file_reads_member_from_cached_wheel(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / "fake_pkg-1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fakepkgxyz/data/file.txt", "hello")
    path = packaged_file("fake-pkg", "1.2", "fakepkgxyz/data/file.txt", download=False)
    assert path.read_text() == "hello" and str(path).startswith(str(tmp_path / "cache"))
    with pytest.raises(IsrnetError, match=r"pip download --no-deps .* fake-pkg==1\.2"):
        packaged_file("fake-pkg", "1.2", "fakepkgxyz/data/other.txt", download=False)


def test_packaged_file_finds_installed_package_folder() -> None:
    assert packaged_file("none", "0", "json/__init__.py", download=False).name == "__init__.py"


def test_sdist_file_reads_member_from_cached_source_distribution(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    payload = tmp_path / "scan.nrrd"
    payload.write_text("volume")
    with tarfile.open(tmp_path / "wheels" / "fake-pkg-1.2.tar.gz", "w:gz") as archive:
        archive.add(payload, arcname="fake-pkg-1.2/data/scan.nrrd")
    path = sdist_file("fake-pkg", "1.2", "data/scan.nrrd", download=False)
    assert path.read_text() == "volume" and str(path).startswith(str(tmp_path / "cache"))
    assert source_file(("sdist", "fake-pkg", "1.2", "data/scan.nrrd")) == path
    with pytest.raises(IsrnetError, match=r"fake-pkg-1\.2\.tar\.gz from https://pypi\.org"):
        sdist_file("fake-pkg", "1.2", "data/other.nrrd", download=False)


def test_debian_file_error_says_what_to_run(raw: Path) -> None:
    with pytest.raises(IsrnetError, match="apt-get install some-package"):
        debian_file("some-package", "/usr/share/doc/some-package/missing.nii.gz", download=False)


# --- command line ------------------------------------------------------------------------------------

def test_cli_folder_and_one_line_errors(raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_volume(Volume(np.ones((3, 4, 5), np.float32), (3.0, 1.0, 1.0)), tmp_path / "in" / "a.mha")
    with pytest.raises(SystemExit) as exit_info:
        main(["folder", str(tmp_path / "in"), "-d", "7", "-n", "Cli", "--slice-thickness", "3"])
    assert exit_info.value.code == 0
    assert json.loads((raw / "Dataset007_Cli" / "dataset.json").read_text())["slice_profile"] == {"thickness_mm": 3.0}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["ixi", str(tmp_path / "missing"), "-d", "8"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("isr_convert: error: ") and "Traceback" not in err
