"""Public video datasets of PNG frame folders -> a video dataset of greyscale PNG frame folders.

REDS: `train_sharp/<clip 000>/00000000.png ...` (also `train/train_sharp/...`; other splits by
`split`). Vimeo-90K septuplets: `sequences/<00001>/<0001>/im1.png .. im7.png`, restricted to the
entries of `sep_trainlist.txt` when present. Frames are copied as 8-bit greyscale, optionally
box-downsampled to `max_side`.
"""
from __future__ import annotations

from pathlib import Path

from isrnet.errors import IsrnetError
from isrnet.imageio.formats import FRAME_ENDINGS
from isrnet.imageio.video import read_frame_folder
from dataset_conversion.staging import build_dataset, dataset_folder_name, notice, write_dataset_json, write_frames


def _has_frames(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in FRAME_ENDINGS for p in folder.iterdir())


def reds_clips(source: Path, split: str = "train") -> dict[str, Path]:
    """Clip name ('reds_000') -> frame folder of the REDS `split` (sharp frames)."""
    sharp = f"{split}_sharp"
    for root in (source, source / sharp, source / split / sharp, source / sharp / sharp):
        clips = {f"reds_{d.name}": d for d in sorted(root.iterdir()) if _has_frames(d)} if root.is_dir() else {}
        if clips:
            return clips
    return {}


def vimeo_clips(source: Path, list_file: str | Path | None = None) -> dict[str, Path]:
    """Clip name ('00001_0001') -> septuplet folder; `list_file` defaults to sep_trainlist.txt if present."""
    sequences = source / "sequences" if (source / "sequences").is_dir() else source
    listing = Path(list_file) if list_file is not None else source / "sep_trainlist.txt"
    if list_file is not None and not listing.is_file():
        raise IsrnetError(f"{listing}: list file not found")
    if listing.is_file():
        entries = [line.strip().strip("/") for line in listing.read_text().splitlines() if line.strip()]
        missing = [e for e in entries if not _has_frames(sequences / e)]
        if missing:
            notice(f"warning: {len(missing)} of {len(entries)} entries of {listing.name} have no frames "
                   f"(first: {missing[0]}); skipped")
        skipped = set(missing)
        return {e.replace("/", "_"): sequences / e for e in entries if e not in skipped}
    return {f"{d.parent.name}_{d.name}": d for d in sorted(sequences.glob("*/*")) if _has_frames(d)}


def _fill(folder: Path, clips: dict[str, Path], name: str, description: str, licence: str,
          max_side: int | None) -> None:
    shapes = set()
    for number, (clip, path) in enumerate(clips.items(), 1):
        frames = read_frame_folder(path, max_side)
        write_frames(frames, folder / "imagesTr" / clip)
        shapes.add(frames.shape[1:])
        if number % 200 == 0 or number == len(clips):
            notice(f"{name}: {number}/{len(clips)} clips")
    sizes = ", ".join(f"{h}x{w}" for h, w in sorted(shapes))
    write_dataset_json(folder, name, "video", ".png", len(clips), f"{description} Frame sizes: {sizes}.", licence)


def _convert(clips: dict[str, Path], dataset_id: int | str, name: str, description: str, licence: str,
             max_side: int | None, overwrite: bool) -> Path:
    folder_name = dataset_folder_name(dataset_id, name)
    return build_dataset(folder_name, lambda f: _fill(f, clips, name, description, licence, max_side), overwrite)


def convert_reds(source: str | Path, dataset_id: int | str, name: str = "REDS", split: str = "train",
                 max_side: int | None = None, overwrite: bool = False) -> Path:
    """Convert REDS `split`_sharp clips under `source` into a video dataset."""
    source = Path(source).expanduser()
    clips = reds_clips(source, split) if source.is_dir() else {}
    if not clips:
        raise IsrnetError(f"{source}: no REDS clips found (expected {split}_sharp/000/00000000.png ... "
                          f"or {split}/{split}_sharp/...)")
    return _convert(clips, dataset_id, name, f"REDS {split}_sharp: {len(clips)} clips, greyscale 8-bit PNG.",
                    "CC BY 4.0 (REDS, see the dataset's terms)", max_side, overwrite)


def convert_vimeo(source: str | Path, dataset_id: int | str, name: str = "Vimeo90K",
                  list_file: str | Path | None = None, max_side: int | None = None,
                  overwrite: bool = False) -> Path:
    """Convert Vimeo-90K septuplets under `source` (the folder holding sequences/) into a video dataset."""
    source = Path(source).expanduser()
    clips = vimeo_clips(source, list_file) if source.is_dir() else {}
    if not clips:
        raise IsrnetError(f"{source}: no Vimeo-90K septuplets found (expected sequences/00001/0001/im1.png ...)")
    return _convert(clips, dataset_id, name, f"Vimeo-90K septuplets: {len(clips)} clips of 7 frames, "
                    f"greyscale 8-bit PNG.", "see the Vimeo-90K terms (research use; videos from vimeo.com)",
                    max_side, overwrite)
