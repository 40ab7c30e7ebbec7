"""Training losses by name (plans key `training.loss`)."""
from __future__ import annotations

from typing import Callable

from isrnet.configuration import LOSS_NAMES
from isrnet.errors import IsrnetError


def loss_function(name: str) -> Callable:
    """The torch loss called `name`: (prediction, target) -> scalar tensor."""
    from torch.nn import functional
    losses = {"l1": functional.l1_loss, "l2": functional.mse_loss}
    if name not in losses:
        raise IsrnetError(f"unknown loss '{name}' (plans key training.loss); use one of {', '.join(LOSS_NAMES)}")
    return losses[name]
