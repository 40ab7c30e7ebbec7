"""Checkpoints: saved atomically (temporary file + rename), so a kill or a full disk never corrupts one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from isrnet.errors import IsrnetError
from isrnet.utilities.files import atomic_file


def save_checkpoint(content: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary name, fsync, rename; on failure the previous file stays as it was."""
    try:
        with atomic_file(path) as handle:
            torch.save(content, handle)
    except (OSError, RuntimeError) as error:  # torch reports a failed write (e.g. disk full) as RuntimeError
        reason = (error.strerror or str(error)) if isinstance(error, OSError) else \
            f"writing failed, is the disk full? {str(error).strip().splitlines()[-1][:160]}"
        raise IsrnetError(f"could not save checkpoint {path} ({reason}); "
                          f"the previous checkpoint is still valid") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise IsrnetError(f"checkpoint {path} does not exist")
    try:
        # weights_only: tensors and plain Python data only, so a checkpoint someone sends (-init, -m) cannot run code
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise IsrnetError(f"checkpoint {path} cannot be read ({type(error).__name__}); it may be damaged") from None
    if not isinstance(content, dict) or "network" not in content or "state_dict" not in content:
        raise IsrnetError(f"{path} is not an isrnet checkpoint (it lacks 'network' and 'state_dict')")
    return content


def check_compatible(checkpoint: dict, network_config: dict, source: str) -> None:
    """Weights fit only the same network class and kwargs; say exactly what differs."""
    theirs = checkpoint["network"]
    if theirs.get("name") != network_config.get("name"):
        raise IsrnetError(f"{source} holds a {theirs.get('name')} network, this plan needs {network_config.get('name')}")
    differ = [f"{key}: checkpoint {theirs['kwargs'].get(key)} vs plan {value}"
              for key, value in network_config["kwargs"].items() if theirs["kwargs"].get(key) != value]
    if differ:
        raise IsrnetError(f"{source} is incompatible with this plan's network ({'; '.join(differ)})")


def network_from_checkpoint(checkpoint: dict[str, Any] | str | Path) -> torch.nn.Module:
    """The network a checkpoint (its content, or a file) describes, with its weights loaded: the one place that
    builds a network from saved weights (prediction, adaptation, model archives)."""
    from isrnet.networks import build_network
    content = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    network = build_network(content["network"])
    network.load_state_dict(content["state_dict"])
    return network
