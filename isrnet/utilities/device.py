"""The compute device: the `-device` choices and the CUDA check, in one place."""
from __future__ import annotations

from isrnet.errors import IsrnetError

DEVICES = ("cpu", "cuda")


def resolve_device(name: str) -> str:
    """`name` checked against what this torch build can use (CUDA only when a device is visible)."""
    if name not in DEVICES:
        raise IsrnetError(f"unknown device '{name}'; use one of {', '.join(DEVICES)}")
    if name == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise IsrnetError("-device cuda: this torch build sees no CUDA device; use -device cpu")
    return name


def check_amp(device: str, amp: bool) -> None:
    """Mixed precision (float16 autocast) is for CUDA only."""
    if amp and not str(device).startswith("cuda"):
        raise IsrnetError("--amp (float16 autocast) needs -device cuda")
