"""Pre-trained weights shipped with the package (`video.pth`, `mrft.pth`), each with a provenance JSON."""
from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def shipped_weights(stage: str) -> Path | None:
    """The shipped checkpoint of `stage`, or None when this installation has none."""
    path = FOLDER / f"{stage}.pth"
    return path if path.is_file() else None
