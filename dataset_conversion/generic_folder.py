"""Any folder of images a user brings -> a raw dataset.

Images: NIfTI / NRRD / MetaImage files in the folder, DICOM series in sub-folders (at any depth), or
a folder that is itself one DICOM series. Every case is written as `.nii.gz` with its geometry; a 4D
file gives one case per volume. DICOM SliceThickness (0018,0050) goes to dataset.json's per-case
`dicom_slice_thickness_mm` (a header fact: planning checks it is plausible). With kind='video', video files and frame folders become greyscale PNG frame
folders, split at detected scene cuts.
"""
from __future__ import annotations

import re
from pathlib import Path

from isrnet.datasets import DICOM_THICKNESS_KEY, case_name, list_clips
from isrnet.errors import IsrnetError
from isrnet.imageio.formats import IMAGE_ENDINGS, image_ending, is_dicom_folder
from isrnet.imageio.geometry import is_isotropic
from isrnet.imageio.reader_writer import read_volumes, write_volume
from isrnet.imageio.video import read_clip
from isrnet.stages import DatasetKind
from dataset_conversion.scene_cuts import detect_scene_cuts, split_at_cuts
from dataset_conversion.staging import (build_dataset, dataset_folder_name, notice, write_dataset_json,
                                        write_frames)

MIN_CLIP_FRAMES = 3


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "case"


def find_image_cases(source: Path) -> dict[str, Path]:
    """Case name -> image file or DICOM series folder found in `source`."""
    if is_dicom_folder(source):
        return {_safe(source.name): source}
    cases: dict[str, Path] = {}
    entries = [p for p in sorted(source.iterdir()) if not p.name.startswith(".")]
    files = [p for p in entries if p.is_file() and image_ending(p)]
    folders = [d for p in entries if p.is_dir() for d in [p, *sorted(p.rglob("*"))]
               if d.is_dir() and is_dicom_folder(d)]
    for path in files + folders:
        name = _safe(case_name(path) if path.is_file() else "_".join(path.relative_to(source).parts))
        if name in cases:
            raise IsrnetError(f"{source}: {cases[name].name} and {path.name} both give case '{name}'; rename one")
        cases[name] = path
    return cases


def _fill_images(folder: Path, cases: dict[str, Path], kind: str, name: str, source: Path,
                 thickness_mm: float | None) -> None:
    header: dict[str, float] = {}  # DICOM SliceThickness per case: a header fact, checked for plausibility at planning
    written = 0
    for case, path in cases.items():
        volumes = read_volumes(path)
        if len(volumes) > 1:
            notice(f"{path.name}: 4D image, written as {len(volumes)} cases {case}_vol000 ...")
        for index, volume in enumerate(volumes):
            out = case if len(volumes) == 1 else f"{case}_vol{index:03d}"
            if kind == DatasetKind.HR_MR and not is_isotropic(volume.spacing):
                notice(f"warning: {out} has spacing {volume.spacing} mm: not isotropic, the planner's "
                       f"isotropy check will flag it for stage 2")
            write_volume(volume, folder / "imagesTr" / f"{out}.nii.gz")
            if volume.dicom_thickness_mm is not None:
                header[out] = float(volume.dicom_thickness_mm)
                if thickness_mm is not None and abs(volume.dicom_thickness_mm - thickness_mm) > 0.01 * thickness_mm:
                    notice(f"{out}: DICOM SliceThickness {volume.dicom_thickness_mm} mm differs from --slice-thickness "
                           f"{thickness_mm} mm; using {thickness_mm} mm")
            written += 1
    write_dataset_json(folder, name, kind, ".nii.gz", written,
                       description=f"Converted by isr_convert folder from {source} ({written} cases).",
                       licence="as of the source data",
                       thickness_mm=None if thickness_mm is None else float(thickness_mm),
                       extra={DICOM_THICKNESS_KEY: header} if header else None)
    notice(f"{name}: {written} cases written")


def _fill_video(folder: Path, clips: dict[str, Path], name: str, source: Path, max_side: int | None) -> None:
    written = 0
    for clip, path in clips.items():
        frames = read_clip(path, max_side)
        cuts = detect_scene_cuts(frames)
        segments = split_at_cuts(len(frames), cuts)
        if cuts:
            notice(f"{path.name}: scene cuts at frames {cuts}, split into {len(segments)} clips")
        for number, (start, stop) in enumerate(segments):
            if stop - start < MIN_CLIP_FRAMES:
                notice(f"{path.name}: frames [{start}, {stop}) dropped (fewer than {MIN_CLIP_FRAMES})")
                continue
            out = _safe(clip) if len(segments) == 1 else f"{_safe(clip)}_{number:02d}"
            write_frames(frames[start:stop], folder / "imagesTr" / out)
            written += 1
    if not written:
        raise IsrnetError(f"{source}: no clip with at least {MIN_CLIP_FRAMES} frames")
    write_dataset_json(folder, name, str(DatasetKind.VIDEO), ".png", written,
                       description=f"Converted by isr_convert folder from {source} ({written} clips, "
                                   f"greyscale 8-bit PNG frames).", licence="as of the source data")


def convert_folder(source: str | Path, dataset_id: int | str, name: str, kind: str = str(DatasetKind.TARGET),
                   thickness_mm: float | None = None, overwrite: bool = False,
                   max_side: int | None = None) -> Path:
    """Convert the images (or, kind='video', clips) in `source` into raw dataset `dataset_id`_`name`."""
    source = Path(source).expanduser()
    folder_name = dataset_folder_name(dataset_id, name)
    if not source.is_dir():
        raise IsrnetError(f"{source}: not a folder; give a folder of images, DICOM series or videos")
    if kind == DatasetKind.VIDEO:
        clips = list_clips(source)
        if not clips:
            raise IsrnetError(f"{source}: holds no video files or sub-folders of frame images")
        return build_dataset(folder_name, lambda f: _fill_video(f, clips, name, source, max_side), overwrite)
    if kind not in (DatasetKind.TARGET, DatasetKind.HR_MR):
        raise IsrnetError(f"kind '{kind}' is unknown; use {', '.join(str(k) for k in DatasetKind)}")
    cases = find_image_cases(source)
    if not cases:
        raise IsrnetError(f"{source}: holds no images ({', '.join(IMAGE_ENDINGS)}) or DICOM series folders")
    return build_dataset(folder_name, lambda f: _fill_images(f, cases, kind, name, source, thickness_mm),
                         overwrite)
