"""Fusion that weights each stack by what it really measured, frequency by frequency.

A stack is sharp in-plane and blurred along its own slice normal n. On the common grid, its weight at spatial
frequency f (cycles/mm) is the power its acquisition transmits there: a Gaussian of FWHM w_n = max(slice
thickness, slice spacing) along n (what the slices measured; beyond their sampling the super-resolved values
are the network's inference, not a measurement) times a Gaussian of FWHM w_p = the in-plane pixel spacing
across n, squared (power):  log W(f) = -(pi^2 / (2 ln 2)) (w_n^2 f_n^2 + w_p^2 f_perp^2). The fused spectrum is sum_k H_k X_k with H_k = W_k / sum_j W_j (a partition
of unity, computed as a softmax so it never divides by zero). Stacks with only partial overlap: every voxel
takes the fusion of exactly the stacks that cover it (one fusion per occurring subset; a stack's missing part
is filled with the mean of the others there, so the filters do not see an edge).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

LOG_POWER_PER_FWHM2 = np.pi ** 2 / (2 * np.log(2))  # -log |MTF|^2 of a Gaussian = this * (FWHM f)^2


@dataclass(frozen=True)
class StackResponse:
    """What one stack measured, on the grid's axes: its slice normal and the two widths (mm)."""
    normal: np.ndarray  # unit vector in the grid's array-axis coordinates
    along_mm: float  # FWHM along the normal: max(slice thickness, slice spacing)
    across_mm: float  # FWHM in-plane: the pixel spacing

    def as_record(self) -> dict:
        return {"normal_in_grid_axes": [round(float(v), 5) for v in self.normal],
                "fwhm_along_slice_normal_mm": round(self.along_mm, 4), "fwhm_in_plane_mm": round(self.across_mm, 4)}


def _frequencies(shape: tuple[int, int, int], spacing: float) -> list[np.ndarray]:
    """Broadcastable frequency grids (cycles/mm) for rfftn of `shape`."""
    axes = [scipy.fft.fftfreq(shape[0], spacing), scipy.fft.fftfreq(shape[1], spacing),
            scipy.fft.rfftfreq(shape[2], spacing)]
    return [axis.reshape([-1 if k == i else 1 for k in range(3)]).astype(np.float32) for i, axis in enumerate(axes)]


def log_weight(response: StackResponse, frequencies: list[np.ndarray]) -> np.ndarray:
    along = sum(float(n) * f for n, f in zip(response.normal, frequencies))
    total = sum(f * f for f in frequencies)
    across = np.maximum(total - along * along, 0.0)
    return (-LOG_POWER_PER_FWHM2 * (response.along_mm ** 2 * along * along
                                    + response.across_mm ** 2 * across)).astype(np.float32)


def _partition(log_weights: list[np.ndarray]) -> list[np.ndarray]:
    top = np.maximum.reduce(log_weights)
    powers = [np.exp(w - top) for w in log_weights]
    total = sum(powers)
    return [p / total for p in powers]


def fuse(arrays: list[np.ndarray], responses: list[StackResponse], spacing: float) -> tuple[np.ndarray, dict]:
    """Fuse stacks on one grid (NaN = not covered). Returns (fused array, NaN where no stack covers; record)."""
    covered = [np.isfinite(a) for a in arrays]
    count = sum(c.astype(np.int16) for c in covered)
    mean = np.where(count > 0, sum(np.where(c, a, 0.0) for a, c in zip(arrays, covered)) / np.maximum(count, 1), 0.0)
    frequencies = _frequencies(arrays[0].shape, spacing)
    log_weights = [log_weight(r, frequencies) for r in responses]
    spectra = [scipy.fft.rfftn(np.where(c, a, mean).astype(np.float32), workers=-1) for a, c in zip(arrays, covered)]
    code = sum(c.astype(np.int32) << k for k, c in enumerate(covered))  # which stacks cover each voxel
    fused = np.full(arrays[0].shape, np.nan, np.float32)
    subsets = {}
    for subset_code in np.unique(code[code > 0]):
        members = [k for k in range(len(arrays)) if (int(subset_code) >> k) & 1]
        where = code == subset_code
        if len(members) == 1:
            fused[where] = arrays[members[0]][where]
        else:
            shares = _partition([log_weights[k] for k in members])
            spectrum = sum(share * spectra[k] for share, k in zip(shares, members))
            fused[where] = scipy.fft.irfftn(spectrum, arrays[0].shape, workers=-1)[where]
        subsets["+".join(map(str, members))] = round(float(where.mean()), 4)
    return fused, {"method": "frequency weighting (Gaussian transfer of each stack's slice profile and pixel)",
                   "coverage_by_stack_subset": subsets}
