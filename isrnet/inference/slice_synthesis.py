"""The network applied to a whole slices-first stack: streaming over gaps, in-plane tiles when large.

Memory stays O(K slices of features) whatever the number of slices: each slice is encoded once,
when it first enters the context window, and dropped when it leaves.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from isrnet.imageio.geometry import output_positions
from isrnet.networks.slice_synth import conditioning_vector, cubic_between

TILE_PIXELS = 768 * 768  # larger slices are processed in overlapping in-plane tiles
TILE_OVERLAP = 24  # pixels on each side, more than the network's receptive field radius


def _gap_plan(positions: np.ndarray, n_slices: int, keep_input: bool) -> dict[int, list[int]]:
    """Output indices grouped by the gap they fall in (gap i lies between input slices i and i+1)."""
    groups: dict[int, list[int]] = {}
    for j, p in enumerate(positions):
        if keep_input and abs(p - round(p)) < 1e-6:
            continue
        gap = min(int(np.floor(p + 1e-9)), n_slices - 2)
        groups.setdefault(gap, []).append(j)
    return groups


@torch.inference_mode()
def _synthesise_stack(network: nn.Module, stack: np.ndarray, positions: np.ndarray, conditioning: list[float],
                      device: str, keep_input: bool, step: Callable[[], None] | None) -> np.ndarray:
    n = stack.shape[0]
    half = network.context // 2
    output = np.empty((len(positions),) + stack.shape[1:], dtype=np.float32)
    for j, p in enumerate(positions):
        if keep_input and abs(p - round(p)) < 1e-6:
            output[j] = stack[int(round(p))]
    slices = torch.from_numpy(np.ascontiguousarray(stack)).to(device)
    condition = torch.tensor([conditioning], dtype=torch.float32, device=device)
    cache: dict[int, torch.Tensor] = {}
    for gap, indices in sorted(_gap_plan(positions, n, keep_input).items()):
        window = [min(max(i, 0), n - 1) for i in range(gap - half + 1, gap + half + 1)]
        for index in list(cache):
            if index not in window:
                del cache[index]
        for index in window:
            if index not in cache:
                cache[index] = network.encode(slices[index][None, None])[0, 0]
        features = torch.stack([cache[i] for i in window])[None]
        context = slices[window][None]
        state = network.mix(features, condition)
        t = torch.tensor([[positions[j] - gap for j in indices]], dtype=torch.float32, device=device)
        result = network.decode(state, cubic_between(context, t), t)
        output[indices] = result[0].float().cpu().numpy()
        if step is not None:
            step()
    return output


def _tiles(length: int, tile: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length - tile, tile - 2 * TILE_OVERLAP)) + [length - tile]
    return [(s, s + tile) for s in sorted(set(starts))]


def synthesise_slices(network: nn.Module, stack: np.ndarray, factor: float, thickness_ratio: float = 1.0,
                      device: str = "cpu", keep_input: bool = True, tta: bool = False,
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Normalised slices-first stack [Z, H, W] -> [floor((Z-1) f) + 1, H, W] on the upsampled grid.

    `keep_input` copies input slices where output slices coincide with them; `tta` averages the four
    in-plane flips. `progress(n)` is called with the number of gaps done.
    """
    network.eval()
    positions = output_positions(stack.shape[0], factor)
    conditioning = conditioning_vector(factor, thickness_ratio)
    h, w = stack.shape[1:]
    tile = max(int(np.sqrt(TILE_PIXELS)), 2 * TILE_OVERLAP + 16)
    output = np.empty((len(positions), h, w), dtype=np.float32)
    flips = [(False, False), (True, False), (False, True), (True, True)] if tta else [(False, False)]
    for y0, y1 in _tiles(h, tile):
        for x0, x1 in _tiles(w, tile):
            part = stack[:, y0:y1, x0:x1]
            result = np.zeros((len(positions), y1 - y0, x1 - x0), dtype=np.float32)
            for flip_y, flip_x in flips:
                axes = [a for a, f in ((1, flip_y), (2, flip_x)) if f]
                flipped = np.flip(part, axes) if axes else part
                done = _synthesise_stack(network, flipped, positions, conditioning, device, keep_input,
                                         (lambda: progress(1)) if progress else None)
                result += np.flip(done, axes) if axes else done
            result /= len(flips)
            ty0 = 0 if y0 == 0 else TILE_OVERLAP
            tx0 = 0 if x0 == 0 else TILE_OVERLAP
            output[:, y0 + ty0:y1, x0 + tx0:x1] = result[:, ty0:, tx0:]
    return output


def gap_count(n_slices: int, factor: float, keep_input: bool = True) -> int:
    """How many gaps `synthesise_slices` visits per tile and flip (for progress bars)."""
    return len(_gap_plan(output_positions(n_slices, factor), n_slices, keep_input))
