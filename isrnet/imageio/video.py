"""Video clips as greyscale frame stacks: video files decoded with PyAV, or folders of frame images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet.errors import IsrnetError
from isrnet.imageio.formats import FRAME_ENDINGS, VIDEO_ENDINGS


def _shrink(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(frame.shape) <= max_side:
        return frame
    step = int(np.ceil(max(frame.shape) / max_side))
    h, w = (frame.shape[0] // step) * step, (frame.shape[1] // step) * step
    return frame[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))


def read_video(path: str | Path, max_side: int | None = None, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file to float32 greyscale frames [T, H, W] in [0, 1].

    `max_side` box-downsamples frames by an integer step so the longer side is at most that size
    (keeps memory small: full-colour decoding of long clips needs gigabytes).
    """
    import av  # imported here: only video datasets need it

    path = Path(path)
    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                grey = frame.to_ndarray(format="gray").astype(np.float32) / 255.0
                frames.append(_shrink(grey, max_side))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, OSError) as error:
        raise IsrnetError(f"{path}: cannot decode video ({error})") from None
    if not frames:
        raise IsrnetError(f"{path}: no video frames could be decoded")
    return np.stack(frames).astype(np.float32)


def read_frame_folder(folder: str | Path, max_side: int | None = None) -> np.ndarray:
    """Frames of a folder of images (sorted by name) as float32 greyscale [T, H, W] in [0, 1]."""
    from PIL import Image

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_ENDINGS)
    if not files:
        raise IsrnetError(f"{folder}: holds no frame images ({', '.join(FRAME_ENDINGS)})")
    frames = []
    for file in files:
        try:
            with Image.open(file) as image:
                grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        except OSError as error:
            raise IsrnetError(f"{file}: cannot read frame ({error})") from None
        if frames and grey.shape != frames[0].shape[:2] and _shrink(grey, max_side).shape != frames[0].shape:
            raise IsrnetError(f"{file}: frame size {grey.shape[::-1]} differs from the clip's first frame; "
                              f"all frames of a clip must have one size")
        frames.append(_shrink(grey, max_side))
    return np.stack(frames).astype(np.float32)


def read_clip(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """A clip, whether a video file or a frame folder."""
    path = Path(path)
    if path.is_dir():
        return read_frame_folder(path, max_side)
    if path.suffix.lower() in VIDEO_ENDINGS:
        return read_video(path, max_side)
    raise IsrnetError(f"{path}: not a video file ({', '.join(VIDEO_ENDINGS)}) or a folder of frames")
