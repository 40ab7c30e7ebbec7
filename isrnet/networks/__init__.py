"""Networks by name: the plans (and checkpoints) name a class here and give its kwargs."""
from __future__ import annotations

from torch import nn

from isrnet.errors import IsrnetError
from isrnet.networks.slice_synth import SliceSynthNet

NETWORKS: dict[str, type[nn.Module]] = {"SliceSynthNet": SliceSynthNet}


def build_network(config: dict) -> nn.Module:
    """{'name': 'SliceSynthNet', 'kwargs': {...}} -> module."""
    name = config.get("name")
    if name not in NETWORKS:
        raise IsrnetError(f"unknown network '{name}'; known: {', '.join(NETWORKS)}")
    return NETWORKS[name](**config.get("kwargs", {}))
