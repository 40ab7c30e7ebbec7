"""Predictor: the Python API for super-resolving volumes in memory (the CLI is a thin wrapper around it).

    predictor = Predictor.from_checkpoint("results/Dataset001_DemoBrain/ssft/checkpoint_final.pth")
    out = predictor.predict(volume, factor=4)                 # Volume in, Volume out (geometry exact)
    array, spacing = predictor.predict_array(array, spacing)  # numpy in, numpy out
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import (NEAR_ISOTROPIC_RATIO, factor_of, is_near_isotropic, restore_axes, slice_axis_of,
                                     slices_first, upsampled_volume)
from isrnet.imageio.volume import Volume
from isrnet.inference.slice_synthesis import synthesise_slices
from isrnet.networks import build_network
from isrnet.preprocessing.preprocessor import normalise_percentiles
from isrnet.training.checkpointing import load_checkpoint

TRAINED_FACTOR_MARGIN = 1.5  # asking for more than this times the largest trained factor warns


@dataclass
class PredictionSettings:
    factor: float | None = None  # default: slice spacing / finest in-plane spacing
    target_spacing: float | None = None  # mm between output slices (alternative to factor)
    slice_thickness: float | None = None  # mm; default: the volume's record, else its spacing
    keep_input: bool = True
    tta: bool = False


class Predictor:
    def __init__(self, network: torch.nn.Module, description: str, device: str = "cpu",
                 trained_factors: tuple[float, float] | None = None) -> None:
        self.network = network.to(device).eval()
        self.description, self.device, self.trained_factors = description, device, trained_factors

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "Predictor":
        checkpoint = load_checkpoint(path)
        network = build_network(checkpoint["network"])
        network.load_state_dict(checkpoint["state_dict"])
        return cls(network, str(path), device, checkpoint.get("trained_factors"))

    def resolve_factor(self, volume: Volume, settings: PredictionSettings, axis: int) -> float:
        if settings.factor is not None:
            return float(settings.factor)
        if settings.target_spacing is not None:
            return volume.spacing[axis] / float(settings.target_spacing)
        return factor_of(volume.spacing, axis)

    def predict(self, volume: Volume, settings: PredictionSettings = PredictionSettings(),
                slice_axis: int | None = None, progress: Callable[[int], None] | None = None) -> Volume:
        """Super-resolve along the slice axis (largest spacing unless given); geometry follows exactly."""
        axis = slice_axis_of(volume.spacing) if slice_axis is None else slice_axis
        ratio = factor_of(volume.spacing, axis)
        if settings.factor is None and settings.target_spacing is None and is_near_isotropic(volume.spacing, axis):
            raise IsrnetError(f"volume is already near-isotropic (slice spacing {volume.spacing[axis]:g} mm is "
                              f"{ratio:.2f}x the in-plane spacing, <= {NEAR_ISOTROPIC_RATIO}); nothing to super-resolve")
        factor = self.resolve_factor(volume, settings, axis)
        if factor <= 1.0:
            raise IsrnetError(f"factor {factor:.3g} would not add slices")
        if volume.shape[axis] < 2:
            raise IsrnetError(f"only {volume.shape[axis]} slice(s) along the slice axis; at least 2 are needed")
        if self.trained_factors and factor > self.trained_factors[1] * TRAINED_FACTOR_MARGIN:
            warnings.warn(f"factor x{factor:.3g} is far above the largest factor this model was trained for "
                          f"(x{self.trained_factors[1]:g}); expect lower quality", stacklevel=2)
        thickness = settings.slice_thickness or volume.slice_thickness or volume.spacing[axis]
        stack = slices_first(volume, axis)
        source = stack.array.astype(np.float32)
        normalised, offset, scale = normalise_percentiles(source)
        output = synthesise_slices(self.network, normalised, factor, thickness / stack.spacing[0], self.device,
                                   settings.keep_input, settings.tta, progress)
        output = output * scale + offset
        if settings.keep_input:  # exact copies of the input where output and input slices coincide
            step = np.arange(output.shape[0]) / factor
            exact = np.flatnonzero(np.abs(step - np.round(step)) < 1e-6)
            output[exact] = source[np.round(step[exact]).astype(int)]
        return restore_axes(upsampled_volume(stack, output, factor), axis)

    def predict_array(self, array: np.ndarray, spacing: tuple[float, float, float],
                      settings: PredictionSettings = PredictionSettings()) -> tuple[np.ndarray, tuple[float, ...]]:
        """In-memory use: array + spacing in, array + spacing out (identity direction, zero origin)."""
        result = self.predict(Volume(np.asarray(array), spacing), settings)
        return result.array, result.spacing
