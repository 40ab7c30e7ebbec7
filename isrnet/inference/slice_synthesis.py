"""The network applied to a whole slices-first stack: streaming over gaps in blocks, in-plane tiles when large.

Memory stays O(K + gaps per call) slices of features whatever the number of slices: each slice is encoded
once, when it first enters a block's context, and dropped when no later gap needs it. A block of
`gaps_per_call` consecutive gaps is one `mix` call and one `decode` call (several gaps and output positions per
network call); its results stay on the device until the block is done. The network runs only on the box of
each block's anatomy plus CROP_MARGIN (`anatomy_mask`), and each gap keeps the network's output only inside its
own anatomy box, so a gap gets the same values whichever gaps (or frames) share its call; a block of background
only is cubic interpolation.
On the CPU the weights are channels-last (SliceSynthNet then builds its concatenations in that layout); on
CUDA, `amp` runs the network in float16 autocast. Measured with benchmarks/prediction_speed_memory.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from isrnet.imageio.geometry import output_positions
from isrnet.intensity import bounding_box, foreground_mask
from isrnet.networks.slice_synth import conditioning_vector, cubic_between

TILE_PIXELS = 768 * 768  # larger slices are processed in overlapping in-plane tiles
TILE_OVERLAP = 24  # pixels on each side, more than the network's receptive field radius
BLOCK_BYTES = 2 * 2**30  # a block of gaps keeps its activations under about this much device memory
BYTES_PER_PIXEL_GAP = 4 * 400  # float32 activations of one gap's mix (~400 channels) ...
BYTES_PER_PIXEL_POSITION = 4 * 100  # ... and of each output position's decode (~100 channels)
CROP_MARGIN = 32  # pixels of background kept around a block's anatomy, ...
CROP_INSET = TILE_OVERLAP  # ... of which the outer band on cut sides (zero padding reaches it) is not kept
CROP_MIN_SAVING = 0.1  # crop only when that saves at least this share of the slice
CROP_STEP = 16  # crop lengths are multiples of this (fewer shapes for oneDNN to compile)


@dataclass(frozen=True)
class Acceleration:
    """How the network is run: gaps per network call, frames of a time series per synthesis (their gaps share
    the network calls), memory layout, mixed precision (results are equal to float32 gap-by-gap within 1e-5
    without amp)."""
    gaps_per_call: int = 1
    frames_per_call: int = 1
    channels_last: bool = True
    amp: bool = False  # float16 autocast; CUDA only
    crop_to_anatomy: bool = True  # run the network only around each block's anatomy (see anatomy_mask)

    @classmethod
    def for_device(cls, device: str, amp: bool = False) -> "Acceleration":
        """The measured defaults: one gap and one frame per call on the CPU (larger blocks are not faster there), 16
        gaps over up to 8 frames on CUDA."""
        cuda = str(device).startswith("cuda")
        return cls(16 if cuda else 1, 8 if cuda else 1, True, amp and cuda)


def block_size(acceleration: Acceleration, pixels: int, positions_per_gap: int) -> int:
    """Gaps per call: the requested number, fewer where a block would not fit BLOCK_BYTES (large slices, large
    factors), at least 1."""
    per_gap = pixels * (BYTES_PER_PIXEL_GAP + BYTES_PER_PIXEL_POSITION * max(positions_per_gap, 1))
    return max(1, min(acceleration.gaps_per_call, BLOCK_BYTES // per_gap))


def _gap_plan(positions: np.ndarray, n_slices: int, keep_input: bool, frame_length: int | None = None
              ) -> dict[int, list[int]]:
    """Output indices grouped by the gap they fall in (gap i lies between input slices i and i+1). With
    `frame_length`, the stack is frames of that many slices one after the other, and no gap spans two frames."""
    frame_length = frame_length or n_slices
    groups: dict[int, list[int]] = {}
    for j, p in enumerate(positions):
        if keep_input and abs(p - round(p)) < 1e-6:
            continue
        first = int(np.floor(p + 1e-9)) // frame_length * frame_length
        gap = min(int(np.floor(p + 1e-9)), first + frame_length - 2)
        groups.setdefault(gap, []).append(j)
    return groups


Box = tuple[int, int, int, int]  # (y0, y1, x0, x1) in-plane


def anatomy_mask(stack: np.ndarray) -> np.ndarray:
    """The stack's anatomy: isrnet.intensity's foreground on a 5 x 5 in-plane average (so that background
    noise does not count), decided on the whole stack (tiles and flips take their part of it)."""
    return foreground_mask(ndimage.uniform_filter(stack, size=(1, 5, 5)))


def anatomy_boxes(mask: np.ndarray) -> list[Box | None]:
    """Per slice of an anatomy mask, the in-plane bounding box of the anatomy, or None for background only."""
    return [tuple(bound for axis in bounding_box(plane) for bound in axis) if plane.any() else None for plane in mask]


def _block_box(boxes: list[Box | None], shape: tuple[int, int]) -> Box | None:
    """Where the network runs for a block whose context slices have anatomy `boxes`: their union with
    CROP_MARGIN around it, starting on even pixels (the half-resolution path then samples the same grid as on
    the whole slice); the whole slice when cropping would save little; None when there is no anatomy."""
    present = [box for box in boxes if box is not None]
    if not present:
        return None
    h, w = shape
    anatomy = _union(present)
    (y0, y1), (x0, x1) = (_crop_range(anatomy[i], anatomy[i + 1], size) for i, size in ((0, h), (2, w)))
    if (y1 - y0) * (x1 - x0) > (1.0 - CROP_MIN_SAVING) * h * w:
        return 0, h, 0, w
    return y0, y1, x0, x1


def _crop_range(start: int, stop: int, size: int) -> tuple[int, int]:
    """[start, stop) with CROP_MARGIN on both sides, its length a multiple of CROP_STEP (so that few distinct
    shapes reach the convolutions, each of which oneDNN compiles and caches) and its start even, within the
    slice [0, size)."""
    start, stop = max(start - CROP_MARGIN, 0) // 2 * 2, min(stop + CROP_MARGIN, size)
    length = min(-(-(stop - start) // CROP_STEP) * CROP_STEP, size)
    start = min(start, size - length) // 2 * 2
    return start, min(start + length, size)


def _union(boxes: list[Box]) -> Box:
    return min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes)


def _inner(box: Box, shape: tuple[int, int]) -> Box:
    """`box` less CROP_INSET on the sides where it cuts the slice (its outer band saw zero padding)."""
    y0, y1, x0, x1 = box
    h, w = shape
    return (y0 + CROP_INSET * (y0 > 0), y1 - CROP_INSET * (y1 < h), x0 + CROP_INSET * (x0 > 0),
            x1 - CROP_INSET * (x1 < w))


def _crop(features: torch.Tensor, region: Box, box: Box) -> torch.Tensor:
    """The part in `box` of features computed on `region` (which contains it)."""
    return features[..., box[0] - region[0]:box[1] - region[0], box[2] - region[2]:box[3] - region[2]]


@torch.inference_mode()
def _synthesise_stack(network: nn.Module, stack: np.ndarray, positions: np.ndarray, conditioning: list[float],
                      device: str, keep_input: bool, step: Callable[[], None] | None,
                      acceleration: Acceleration = Acceleration(), mask: np.ndarray | None = None,
                      frame_length: int | None = None) -> np.ndarray:
    """The gaps of one tile and flip; the network runs around the anatomy in `mask` (None: whole slices). With
    `frame_length`, `stack` is several frames of that many slices, whose gaps share network calls and never
    look across a frame's ends."""
    n, shape = stack.shape[0], stack.shape[1:]
    frame_length = frame_length or n
    half = network.context // 2
    output = np.empty((len(positions),) + shape, dtype=np.float32)
    for j, p in enumerate(positions):
        if keep_input and abs(p - round(p)) < 1e-6:
            output[j] = stack[int(round(p))]
    slices = torch.from_numpy(np.ascontiguousarray(stack)).to(device)
    plan = sorted(_gap_plan(positions, n, keep_input, frame_length).items())
    gaps = block_size(acceleration, shape[0] * shape[1], max((len(i) for _, i in plan), default=1))
    blocks = [plan[start:start + gaps] for start in range(0, len(plan), gaps)]
    windows = [[_window(gap, half, frame_length) for gap, _ in block] for block in blocks]
    anatomy = anatomy_boxes(mask) if mask is not None else [(0, shape[0], 0, shape[1])] * n
    boxes = [_block_box([anatomy[i] for window in block_windows for i in window], shape)
             for block_windows in windows]
    regions: dict[int, list[Box]] = {}  # where each slice's encoding is needed
    for box, block_windows in zip(boxes, windows):
        for i in {i for window in block_windows for i in window} if box is not None else ():
            regions.setdefault(i, []).append(box)
    cache: dict[int, tuple[torch.Tensor, Box]] = {}
    autocast = torch.autocast("cuda", dtype=torch.float16, enabled=acceleration.amp)
    for block, block_windows, box in zip(blocks, windows, boxes):
        context = slices[torch.tensor(block_windows, device=slices.device)]
        most = max(len(indices) for _, indices in block)  # gaps with fewer positions repeat their last one
        t = torch.tensor([[positions[j] - gap for j in indices] + [positions[indices[-1]] - gap] * (most - len(indices))
                          for gap, indices in block], dtype=torch.float32, device=slices.device)
        result = cubic_between(context, t)  # classic interpolation: the network's base, and all of a background block
        if box is not None:
            needed = sorted({i for window in block_windows for i in window})
            for index in [i for i in cache if i < needed[0]]:
                del cache[index]
            y0, y1, x0, x1 = box
            with autocast:
                new = [i for i in needed if i not in cache]
                if new:  # one call, on the union of where these slices' encodings will be needed
                    r0, r1, q0, q1 = region = _union([where for i in new for where in regions[i]])
                    encoded = network.encode_slices(slices[new, r0:r1, q0:q1])
                    cache.update({i: (encoded[k:k + 1], region) for k, i in enumerate(new)})
                features = []
                for k in range(network.context):
                    parts = [_crop(*cache[window[k]], box) for window in block_windows]
                    features.append(torch.cat(parts) if len(parts) > 1 else parts[0])
                condition = torch.tensor([conditioning] * len(block), dtype=torch.float32, device=slices.device)
                state = network.mix_slices(features, condition)
                synthesised = network.decode(state, result[..., y0:y1, x0:x1], t).float()
            for row, window in enumerate(block_windows):  # each gap keeps the network only where it would alone
                own = _block_box([anatomy[i] for i in window], shape)
                if own is not None:
                    i0, i1, j0, j1 = _inner(own, shape)
                    result[row, :, i0:i1, j0:j1] = synthesised[row, :, i0 - y0:i1 - y0, j0 - x0:j1 - x0]
        result = result.cpu().numpy()
        for row, (_, indices) in enumerate(block):
            output[indices] = result[row, :len(indices)]
            if step is not None:
                step()
    return output


def _window(gap: int, half: int, frame_length: int) -> list[int]:
    """The context slices of `gap`: `half` on each side, repeating the end slices of its frame."""
    first = gap // frame_length * frame_length
    return [min(max(i, first), first + frame_length - 1) for i in range(gap - half + 1, gap + half + 1)]


def _tiles(length: int, tile: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length - tile, tile - 2 * TILE_OVERLAP)) + [length - tile]
    return [(s, s + tile) for s in sorted(set(starts))]


def synthesise_slices(network: nn.Module, stack: np.ndarray, factor: float, thickness_ratio: float = 1.0,
                      device: str = "cpu", keep_input: bool = True, tta: bool = False,
                      progress: Callable[[int], None] | None = None,
                      acceleration: Acceleration | None = None,
                      conditioning_factor: float | None = None) -> np.ndarray:
    """Normalised slices-first stack [Z, H, W] -> [floor((Z-1) f) + 1, H, W] on the upsampled grid; frames of one
    grid [T, Z, H, W] -> [T, floor((Z-1) f) + 1, H, W], their gaps sharing network calls (`gaps_per_call`), each
    frame with the values it would get alone.

    `keep_input` copies input slices where output slices coincide with them; `tta` averages the four
    in-plane flips. `progress(n)` is called with the number of gaps done. `acceleration`: see Acceleration
    (default: the measured defaults of `device`). `conditioning_factor`: the gap the network is told, when it is
    not the factor (default: the factor).
    """
    acceleration = acceleration or Acceleration.for_device(device)
    network.eval()
    if acceleration.channels_last:  # the weights' layout decides the convolutions' (inputs stay as they are)
        network.to(memory_format=torch.channels_last)
    frames = stack.ndim == 4
    if frames:  # one stack of the frames one after the other; their positions likewise
        count, frame_length = stack.shape[:2]
        mask = np.concatenate([anatomy_mask(frame) for frame in stack]) if acceleration.crop_to_anatomy else None
        stack = stack.reshape((count * frame_length,) + stack.shape[2:])
        one = output_positions(frame_length, factor)
        positions = np.concatenate([one + k * frame_length for k in range(count)])
    else:
        frame_length = stack.shape[0]
        mask = anatomy_mask(stack) if acceleration.crop_to_anatomy else None
        positions = output_positions(frame_length, factor)
    conditioning = conditioning_vector(conditioning_factor or factor, thickness_ratio)
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
                part_mask = None
                if mask is not None:
                    part_mask = np.flip(mask[:, y0:y1, x0:x1], axes) if axes else mask[:, y0:y1, x0:x1]
                done = _synthesise_stack(network, flipped, positions, conditioning, device, keep_input,
                                         (lambda: progress(1)) if progress else None, acceleration, part_mask,
                                         frame_length)
                result += np.flip(done, axes) if axes else done
            result /= len(flips)
            ty0 = 0 if y0 == 0 else TILE_OVERLAP
            tx0 = 0 if x0 == 0 else TILE_OVERLAP
            output[:, y0 + ty0:y1, x0 + tx0:x1] = result[:, ty0:, tx0:]
    return output.reshape((count, -1, h, w)) if frames else output


def gap_count(n_slices: int, factor: float, keep_input: bool = True) -> int:
    """How many gaps `synthesise_slices` visits per tile and flip (for progress bars)."""
    return len(_gap_plan(output_positions(n_slices, factor), n_slices, keep_input))
