"""Pre-trained weights shipped with the package (`video.pth`, `mrft.pth`), each with a provenance JSON.

They were trained with isrnet's own commands; `scripts/train_pretrained_weights.sh` reproduces them and
`<stage>.json` records the exact command, data, iterations, time, git commit and validation figures.
"""
from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
SHIPPED_STAGES = ("mrft", "video")  # in the order a model-less prediction prefers them


def shipped_weights(stage: str) -> Path | None:
    """The shipped checkpoint of `stage`, or None when this installation has none."""
    path = FOLDER / f"{stage}.pth"
    return path if path.is_file() else None


def shipped_stage_of(path: Path) -> str | None:
    """'mrft' when `path` is the shipped mrft checkpoint (etc.), else None."""
    return next((stage for stage in SHIPPED_STAGES if shipped_weights(stage) == Path(path).resolve()), None)


def describe_shipped(stage: str) -> str:
    """'shipped mrft weights (isrnet/pretrained/mrft.pth: Dataset901_HRMR, 1234 iterations, 30.0 min)'."""
    text = f"shipped {stage} weights (isrnet/pretrained/{stage}.pth"
    try:
        record = json.loads((FOLDER / f"{stage}.json").read_text())
        text += (f": trained on {record['dataset']['name']}, {record['iterations']} iterations, "
                 f"{record['wall_time_minutes']:g} min")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return text + ")"
