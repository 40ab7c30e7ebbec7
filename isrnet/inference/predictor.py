"""Predictor: the Python API for super-resolving volumes in memory (the CLI is a thin wrapper around it).

    predictor = Predictor.from_run("results/Dataset001_DemoBrain/ssft")   # weights + the plans beside them
    out = predictor.predict(volume)                                         # Volume in, Volume out (exact geometry)
    out = predictor.predict(volume, predictor.settings_for("case_001"))     # the plan's factor/thickness/axis
    array, spacing = predictor.predict_array(array, spacing)                # numpy in, numpy out

Input goes through the same `prepare_volume` as the training data (slice axis first, the plans' normalisation).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from isrnet.degradation.slice_profile import DEFAULT_FAMILY, SliceProfile, decide_slice_profile
from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import (MIN_SLICES, NEAR_ISOTROPIC_RATIO, factor_of, is_near_isotropic, restore_axes,
                                     slice_axis_of, slices_first, upsampled_volume)
from isrnet.imageio.volume import Volume
from isrnet.inference.model_resolution import Model, from_model_path
from isrnet.inference.slice_synthesis import Acceleration, synthesise_slices
from isrnet.intensity import DEFAULT_NORMALIZATION
from isrnet.networks import build_network
from isrnet.preprocessing.preprocessor import prepare_volume
from isrnet.runs import Run
from isrnet.training.checkpointing import load_checkpoint
from isrnet.utilities.device import check_amp

TRAINED_FACTOR_MARGIN = 1.5  # asking for more than this times the largest trained factor warns
FAMILY_NOT_DECIDED = "not used by prediction"  # family_source of a profile whose thickness was given


@dataclass
class PredictionSettings:
    factor: float | None = None  # default: slice spacing / finest in-plane spacing
    target_spacing: float | None = None  # mm between output slices (alternative to factor)
    slice_thickness: float | None = None  # mm; default: decided from the volume (header, else estimated)
    keep_input: bool = True
    tta: bool = False
    slice_axis: int | None = None  # default: the axis with the largest spacing
    thickness_source: str = "--slice-thickness"  # where slice_thickness came from ('plans' when settings_for set it)
    whole_slices: bool = False  # the network over whole slices (default: around the anatomy; see slice_synthesis)
    # The gap (slice spacing in in-plane pixels) the network is told; default: the factor. Set it to ask for more
    # output slices than the gap has pixels (a denser sampling of the same synthesis, as the hidden-slice
    # evaluation does).
    conditioning_factor: float | None = None


class Predictor:
    def __init__(self, network: torch.nn.Module, description: str, device: str = "cpu",
                 trained_factors: tuple[float, float] | None = None, plans: dict | None = None,
                 amp: bool = False, network_config: dict | None = None, weights: str | None = None) -> None:
        check_amp(device, amp)
        self.network = network.to(device).eval()
        self.description, self.device, self.trained_factors = description, device, trained_factors
        self.plans = plans or {}
        self.amp = amp
        self.acceleration = Acceleration.for_device(device, amp)
        self.network_config = network_config  # build_network's config: what fine-tuning a copy needs
        self.weights = weights  # the checkpoint file the weights came from (provenance)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", plans: dict | None = None,
                        description: str | None = None, amp: bool = False) -> "Predictor":
        checkpoint = load_checkpoint(path)
        network = build_network(checkpoint["network"])
        network.load_state_dict(checkpoint["state_dict"])
        return cls(network, description or str(path), device, checkpoint.get("trained_factors"), plans, amp,
                   checkpoint["network"], str(Path(path).resolve()))

    @classmethod
    def from_model(cls, model: Model, device: str = "cpu", amp: bool = False) -> "Predictor":
        return cls.from_checkpoint(model.checkpoint, device, model.plans, model.description, amp)

    @classmethod
    def from_run(cls, run: Run | str | Path, device: str = "cpu") -> "Predictor":
        """A trained run folder (or Run): its best available checkpoint and the plans it was trained with."""
        return cls.from_model(from_model_path(run.folder if isinstance(run, Run) else run), device)

    def with_network(self, network: torch.nn.Module, description: str) -> "Predictor":
        """The same predictor (plans, device, trained factors) with other weights of the same network."""
        return Predictor(network, description, self.device, self.trained_factors, self.plans, self.amp,
                         self.network_config, None)

    @property
    def normalization(self) -> str:
        return self.plans.get("normalization", DEFAULT_NORMALIZATION)

    def settings_for(self, case: str, requested: PredictionSettings = PredictionSettings()) -> PredictionSettings:
        """`requested`, with what it leaves open taken from the plans' entry for `case` (factor, thickness,
        slice axis), when the model was trained on a dataset that has this case."""
        plan = self.plans.get("cases", {}).get(case, {}) if self.plans.get("kind") == "target" else {}
        scale_given = requested.factor is not None or requested.target_spacing is not None
        from_plan = not requested.slice_thickness and plan.get("slice_thickness")
        return replace(requested, factor=requested.factor if scale_given else plan.get("factor"),
                       slice_thickness=requested.slice_thickness or plan.get("slice_thickness"),
                       thickness_source="plans" if from_plan else requested.thickness_source,
                       slice_axis=requested.slice_axis if requested.slice_axis is not None else plan.get("slice_axis"))

    @staticmethod
    def slice_axis(volume: Volume, settings: PredictionSettings) -> int:
        """The axis super-resolved: the settings' (the plan's), else the one with the largest spacing."""
        return slice_axis_of(volume.spacing) if settings.slice_axis is None else settings.slice_axis

    @staticmethod
    def slice_profile(volume: Volume, settings: PredictionSettings, axis: int) -> SliceProfile:
        """The input's slice profile: the settings' thickness (given, or the plans'), else decided from the
        volume as planning decides it (a plausible DICOM SliceThickness, else estimated, else the spacing).
        The network is conditioned on thickness / spacing; the family is recorded, not used."""
        if settings.slice_thickness:
            return SliceProfile(float(settings.slice_thickness), DEFAULT_FAMILY, settings.thickness_source,
                                FAMILY_NOT_DECIDED, 1.0)
        stack = slices_first(volume, axis)
        return decide_slice_profile(stack.array, stack.spacing, volume.slice_thickness)

    def with_slice_profile(self, volume: Volume, settings: PredictionSettings) -> tuple[PredictionSettings, SliceProfile]:
        """`settings` with the thickness filled in (estimated at most once per volume), and the profile."""
        profile = self.slice_profile(volume, settings, self.slice_axis(volume, settings))
        return replace(settings, slice_thickness=profile.thickness_mm, thickness_source=profile.thickness_source), profile

    def resolve_factor(self, volume: Volume, settings: PredictionSettings, axis: int) -> float:
        if settings.factor is not None:
            return float(settings.factor)
        if settings.target_spacing is not None:
            return volume.spacing[axis] / float(settings.target_spacing)
        return factor_of(volume.spacing, axis)

    def predict(self, volume: Volume, settings: PredictionSettings = PredictionSettings(),
                progress: Callable[[int], None] | None = None) -> Volume:
        """Super-resolve along the slice axis (largest spacing unless set); geometry follows exactly."""
        axis = self.slice_axis(volume, settings)
        ratio = factor_of(volume.spacing, axis)
        if settings.factor is None and settings.target_spacing is None and is_near_isotropic(volume.spacing, axis):
            raise IsrnetError(f"volume is already near-isotropic (slice spacing {volume.spacing[axis]:g} mm is "
                              f"{ratio:.2f}x the in-plane spacing, <= {NEAR_ISOTROPIC_RATIO}); nothing to super-resolve")
        factor = self.resolve_factor(volume, settings, axis)
        if factor <= 1.0:
            raise IsrnetError(f"factor {factor:.3g} would not add slices")
        if volume.shape[axis] < 2:
            raise IsrnetError(f"only {volume.shape[axis]} slice(s) along the slice axis; at least 2 are needed "
                              f"({MIN_SLICES} for training)")
        gap = settings.conditioning_factor or factor
        if self.trained_factors and gap > self.trained_factors[1] * TRAINED_FACTOR_MARGIN:
            warnings.warn(f"factor x{gap:.3g} is far above the largest factor this model was trained for "
                          f"(x{self.trained_factors[1]:g}); expect lower quality", stacklevel=2)
        thickness = self.slice_profile(volume, settings, axis).thickness_mm
        stack = slices_first(volume, axis)
        normalised, inversion = prepare_volume(volume, axis, self.normalization)
        output = synthesise_slices(self.network, normalised, factor, thickness / stack.spacing[0], self.device,
                                   settings.keep_input, settings.tta, progress,
                                   replace(self.acceleration, crop_to_anatomy=not settings.whole_slices),
                                   settings.conditioning_factor)
        output = inversion.intensities(output)
        if settings.keep_input:  # exact copies of the input where output and input slices coincide
            step = np.arange(output.shape[0]) / factor
            exact = np.flatnonzero(np.abs(step - np.round(step)) < 1e-6)
            output[exact] = stack.array.astype(np.float32)[np.round(step[exact]).astype(int)]
        return restore_axes(upsampled_volume(stack, output, factor), axis)

    def predict_array(self, array: np.ndarray, spacing: tuple[float, float, float],
                      settings: PredictionSettings = PredictionSettings()) -> tuple[np.ndarray, tuple[float, ...]]:
        """In-memory use: array + spacing in, array + spacing out (identity direction, zero origin)."""
        result = self.predict(Volume(np.asarray(array), spacing), settings)
        return result.array, result.spacing
