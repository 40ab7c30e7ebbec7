"""Intensities of one stack brought onto the reference stack's scale, and the same-contrast check.

Different series have different scaling (receiver gain, rescale slope), and sometimes a different contrast.
Both are judged on low-passed copies (so the stacks' different resolutions do not count) over the voxels
where both stacks show foreground:
- same contrast: Pearson correlation >= SAME_CONTRAST_CORRELATION; the stack is mapped linearly (least squares);
- otherwise the stack is refused (IsrnetError naming --allow-mixed-contrast), or with that flag mapped through
  the binned conditional mean of the reference given the stack's intensity (its structure, the reference's
  contrast).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from isrnet.errors import IsrnetError
from isrnet.intensity import foreground_mask

SAME_CONTRAST_CORRELATION = 0.6
MIN_OVERLAP_VOXELS = 1000
MAPPING_BINS = 64


@dataclass
class IntensityMap:
    kind: str  # 'identity' (the reference), 'linear' or 'conditional mean'
    correlation: float | None = None
    scale: float = 1.0
    offset: float = 0.0
    table: tuple[list[float], list[float]] | None = None  # (stack intensities, reference intensities)

    def apply(self, values: np.ndarray) -> np.ndarray:
        if self.kind == "conditional mean" and self.table is not None:
            return np.interp(values, *self.table).astype(np.float32)
        return (values * self.scale + self.offset).astype(np.float32)

    def as_record(self) -> dict:
        record = {"kind": self.kind, "correlation": None if self.correlation is None else round(self.correlation, 4)}
        if self.kind == "linear":
            record.update(scale=round(self.scale, 6), offset=round(self.offset, 4))
        return record


def _low_passed(values: np.ndarray, sigma_voxels: float) -> np.ndarray:
    return ndimage.gaussian_filter(np.nan_to_num(values), sigma_voxels, mode="nearest")


def match_intensities(reference: np.ndarray, stack: np.ndarray, sigma_voxels: float, name: str,
                      allow_mixed: bool = False) -> IntensityMap:
    """How to map `stack`'s intensities (on the grid, NaN outside it) to `reference`'s."""
    both = np.isfinite(reference) & np.isfinite(stack)
    both &= foreground_mask(np.nan_to_num(reference)) & foreground_mask(np.nan_to_num(stack))
    if both.sum() < MIN_OVERLAP_VOXELS:
        raise IsrnetError(f"{name}: overlaps the reference stack's foreground in only {int(both.sum())} voxels; "
                          f"cannot match intensities (is it the same anatomy?)")
    x = _low_passed(stack, sigma_voxels)[both].astype(np.float64)  # float64: millions of voxels
    y = _low_passed(reference, sigma_voxels)[both].astype(np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    correlation = float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    if correlation >= SAME_CONTRAST_CORRELATION:  # least-squares line y = scale x + offset
        scale = float((dx * dy).sum() / (dx * dx).sum())
        return IntensityMap("linear", correlation, scale, float(y.mean() - scale * x.mean()))
    if not allow_mixed:
        raise IsrnetError(f"{name}: its contrast differs from the reference stack's (correlation {correlation:.2f} "
                          f"after registration, < {SAME_CONTRAST_CORRELATION}); fuse stacks of one contrast, or "
                          f"give --allow-mixed-contrast to fuse its structure onto the reference's contrast")
    edges = np.quantile(x, np.linspace(0, 1, MAPPING_BINS + 1))
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, MAPPING_BINS - 1)
    counts = np.bincount(index, minlength=MAPPING_BINS)
    means_x = np.bincount(index, x, MAPPING_BINS)[counts > 0] / counts[counts > 0]
    means_y = np.bincount(index, y, MAPPING_BINS)[counts > 0] / counts[counts > 0]
    low_x, low_y = float(np.nanmin(stack)), float(np.nanmin(reference))  # background onto background
    if low_x < means_x[0]:
        means_x, means_y = np.concatenate([[low_x], means_x]), np.concatenate([[low_y], means_y])
    return IntensityMap("conditional mean", correlation, table=(means_x.tolist(), means_y.tolist()))
