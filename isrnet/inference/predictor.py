"""Predictor: the Python API for super-resolving volumes in memory (the CLI is a thin wrapper around it).

    predictor = Predictor.from_run("results/Dataset001_DemoBrain/ssft")   # weights + the plans beside them
    out = predictor.predict(volume)                                         # Volume in, Volume out (exact geometry)
    out = predictor.predict(volume, case="case_001")                        # the plan's factor/thickness/axis
    result = predictor.run(volume, PredictionSettings(factor=4), "case_001")  # + the settings and profile used
    array, spacing = predictor.predict_array(array, spacing)                # numpy in, numpy out

Per volume the predictor resolves once what the settings leave open (`resolve`: the plans' entry for the case, then
the slice profile as planning decides it) and predicts with that. Input goes through the same `prepare_volume` as
the training data (slice axis first, the plans' normalisation).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from isrnet.acquisition.slice_profile import ProfileSource, SliceProfile, decide_slice_profile, default_profile
from isrnet.errors import IsrnetError
from isrnet.imageio.geometry import (MIN_SLICES, NEAR_ISOTROPIC_RATIO, factor_of, is_near_isotropic, restore_axes,
                                     slice_axis_of, slices_first, upsampled_volume)
from isrnet.imageio.volume import Volume
from isrnet.inference.model_resolution import Model, from_model_path
from isrnet.inference.slice_synthesis import Acceleration, synthesise_slices
from isrnet.intensity import DEFAULT_NORMALISATION
from isrnet.plans import Plans
from isrnet.preprocessing.preprocessor import prepare_volume
from isrnet.runs import DEBUG_FILE, Run, RunRecord, checkpoint_in
from isrnet.training.adaptation import Adapted, AdaptationCase, AdaptationOptions, StartingPoint, adapt_to_case
from isrnet.training.checkpointing import load_checkpoint, network_from_checkpoint
from isrnet.utilities.device import check_amp

TRAINED_FACTOR_MARGIN = 1.5  # asking for more than this times the largest trained factor warns


@dataclass
class PredictionSettings:
    factor: float | None = None  # default: slice spacing / finest in-plane spacing
    target_spacing: float | None = None  # mm between output slices (alternative to factor)
    thickness_mm: float | None = None  # the input's slice thickness; default: decided from the volume
    keep_input: bool = True
    tta: bool = False
    slice_axis: int | None = None  # default: the axis with the largest spacing
    thickness_source: ProfileSource = ProfileSource.COMMAND_LINE  # where thickness_mm came from
    whole_slices: bool = False  # the network over whole slices (default: around the anatomy; see slice_synthesis)
    # The gap (slice spacing in in-plane pixels) the network is told; default: the factor. Set it to ask for more
    # output slices than the gap has pixels (a denser sampling of the same synthesis, as the hidden-slice
    # evaluation does).
    conditioning_factor: float | None = None


@dataclass
class Prediction:
    """One volume super-resolved, with what it was predicted with."""
    volume: Volume
    settings: PredictionSettings  # resolved: factor or target spacing as asked, the thickness and axis used
    slice_profile: SliceProfile
    slice_axis: int
    factor: float  # input slice spacing / output slice spacing


class Predictor:
    def __init__(self, network: torch.nn.Module, description: str, device: str = "cpu",
                 trained_factors: tuple[float, float] | None = None, plans: Plans | None = None,
                 amp: bool = False, network_config: dict | None = None, weights: str | None = None) -> None:
        check_amp(device, amp)
        self.network = network.to(device).eval()
        self.description, self.device, self.trained_factors = description, device, trained_factors
        self.plans = plans
        self.amp = amp
        self.acceleration = Acceleration.for_device(device, amp)
        self.network_config = network_config  # build_network's config: what fine-tuning a copy needs
        self.weights = weights  # the checkpoint file the weights came from (provenance)
        # training cases to predict with the run's starting weights (`for_case`): {case: its own witness lead, dB}
        self.case_starts: dict[str, float] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", plans: Plans | None = None,
                        description: str | None = None, amp: bool = False) -> "Predictor":
        checkpoint = load_checkpoint(path)
        predictor = cls(network_from_checkpoint(checkpoint), description or str(path), device,
                        checkpoint.get("trained_factors"), plans, amp, checkpoint["network"],
                        str(Path(path).resolve()))
        predictor.case_starts = _cases_keeping_start(Path(path))
        return predictor

    @classmethod
    def from_model(cls, model: Model, device: str = "cpu", amp: bool = False) -> "Predictor":
        return cls.from_checkpoint(model.checkpoint, device, model.plans, model.description, amp)

    @classmethod
    def from_run(cls, run: Run | str | Path, device: str = "cpu") -> "Predictor":
        """A trained run folder (or Run): its best available checkpoint and the plans it was trained with."""
        return cls.from_model(from_model_path(run.folder if isinstance(run, Run) else run), device)

    def for_case(self, case: str | None) -> "Predictor":
        """The predictor for training case `case`: this one, or, where the run kept its fine-tuned weights but the
        case's own hidden real slices scored them below the start (training/hidden_slice_witness.py), one with the
        run's starting weights."""
        if case not in self.case_starts:
            return self
        start = Predictor.from_checkpoint(checkpoint_in(Path(self.weights).parent, ("start",)), self.device,
                                          self.plans, amp=self.amp)
        start.description = (f"{self.description}: its starting weights for {case} (the case's own hidden real slices "
                             f"scored the fine-tuned ones {self.case_starts[case]:+.2f} dB against them)")
        return start

    def with_network(self, network: torch.nn.Module, description: str) -> "Predictor":
        """The same predictor (plans, device, trained factors) with other weights of the same network."""
        return Predictor(network, description, self.device, self.trained_factors, self.plans, self.amp,
                         self.network_config, None)

    @property
    def normalisation(self) -> str:
        return self.plans.normalisation if self.plans is not None else DEFAULT_NORMALISATION

    def settings_for(self, case: str | None, requested: PredictionSettings = PredictionSettings()) -> PredictionSettings:
        """`requested`, with what it leaves open taken from the plans' entry for `case` (factor, thickness,
        slice axis), when the model was trained on a dataset that has this case."""
        plan = self.plans.case(case) if self.plans is not None and case is not None else None
        if plan is None:
            return requested
        scale_given = requested.factor is not None or requested.target_spacing is not None
        planned = plan.slice_profile.thickness_mm if plan.slice_profile is not None else None
        from_plan = not requested.thickness_mm and planned
        return replace(requested, factor=requested.factor if scale_given else plan.factor,
                       thickness_mm=requested.thickness_mm or planned,
                       thickness_source=ProfileSource.PLANS if from_plan else requested.thickness_source,
                       slice_axis=requested.slice_axis if requested.slice_axis is not None else plan.slice_axis)

    @staticmethod
    def slice_axis(volume: Volume, settings: PredictionSettings) -> int:
        """The axis super-resolved: the settings' (the plan's), else the one with the largest spacing."""
        return slice_axis_of(volume.spacing) if settings.slice_axis is None else settings.slice_axis

    @staticmethod
    def slice_profile(volume: Volume, settings: PredictionSettings, axis: int) -> SliceProfile:
        """The input's slice profile: the settings' thickness (given, or the plans'), else decided from the
        volume as planning decides it (a plausible DICOM SliceThickness, else estimated, else the spacing).
        The network is conditioned on thickness / spacing; the family is recorded, not used."""
        if settings.thickness_mm:
            return replace(default_profile(volume.spacing[axis], settings.thickness_mm, settings.thickness_source),
                           family_source=ProfileSource.NOT_DECIDED)
        stack = slices_first(volume, axis)
        return decide_slice_profile(stack.array, stack.spacing, volume.dicom_thickness_mm)

    def resolve(self, volume: Volume, requested: PredictionSettings = PredictionSettings(),
                case: str | None = None) -> tuple[PredictionSettings, SliceProfile]:
        """What predicting `volume` (case `case` of the model's plans, if any) with `requested` uses: the settings
        with the plans' entry and the thickness filled in (the profile decided at most once), and the profile."""
        settings = self.settings_for(case, requested)
        profile = self.slice_profile(volume, settings, self.slice_axis(volume, settings))
        return replace(settings, thickness_mm=profile.thickness_mm, thickness_source=profile.thickness_source), profile

    def adapted_to(self, case: str, volume: Volume, settings: PredictionSettings, profile: SliceProfile,
                   options: AdaptationOptions, source: Path | None = None,
                   save_to: Path | None = None) -> tuple["Predictor", dict]:
        """This predictor with weights fine-tuned on `volume` alone (training/adaptation.py), and the record for the
        sidecar; this predictor is left unchanged."""
        if self.network_config is None:
            raise IsrnetError("adaptation needs a predictor loaded from a checkpoint (Predictor.from_checkpoint / "
                              "from_model), which knows its network's configuration")
        axis = self.slice_axis(volume, settings)
        start = StartingPoint(self.network.state_dict(), self.network_config, self.description, self.weights,
                              self.plans, self.normalisation, self.trained_factors, self.device)
        adapted: Adapted = adapt_to_case(start, AdaptationCase(case, volume, axis,
                                                               self.resolve_factor(volume, settings, axis), profile,
                                                               source), options, save_to)
        if adapted.skipped:  # like the dataset's cases: predicted with these weights as they are
            return self, adapted.record
        network = network_from_checkpoint({"network": adapted.network, "state_dict": adapted.weights})
        predictor = self.with_network(network, f"{self.description}, adapted to {case} ({adapted.summary})")
        predictor.weights = adapted.record.get("saved_weights")
        return predictor, adapted.record

    def resolve_factor(self, volume: Volume, settings: PredictionSettings, axis: int) -> float:
        if settings.factor is not None:
            return float(settings.factor)
        if settings.target_spacing is not None:
            return volume.spacing[axis] / float(settings.target_spacing)
        return factor_of(volume.spacing, axis)

    def predict(self, volume: Volume, settings: PredictionSettings = PredictionSettings(),
                progress: Callable[[int], None] | None = None, case: str | None = None) -> Volume:
        """Super-resolve along the slice axis (largest spacing unless set); geometry follows exactly."""
        return self.run(volume, settings, case, progress).volume

    def run(self, volume: Volume, requested: PredictionSettings = PredictionSettings(), case: str | None = None,
            progress: Callable[[int], None] | None = None) -> Prediction:
        """`predict`, returning the settings and slice profile it used as well (what a sidecar records); a training
        case of the run is predicted with the weights `for_case` gives it."""
        settings, profile = self.resolve(volume, requested, case)
        return self.for_case(case).run_resolved(volume, settings, profile, progress)

    def run_resolved(self, volume: Volume, settings: PredictionSettings, profile: SliceProfile,
                     progress: Callable[[int], None] | None = None) -> Prediction:
        """`run` with what `resolve` returned: the profile is decided once for a 4D input's volumes, an adapted
        copy of the model and a sidecar alike."""
        return next(self.run_frames([volume], settings, profile, progress))

    def run_frames(self, frames: Iterable[Volume], settings: PredictionSettings, profile: SliceProfile,
                   progress: Callable[[int], None] | None = None) -> Iterator[Prediction]:
        """Every frame of a time series (volumes of one grid) super-resolved with one resolved setting, yielded in
        order as soon as done: `acceleration.frames_per_call` frames are read and synthesised together (their gaps
        share network calls), so memory holds a few frames whatever their number. Each frame gets the values it
        gets alone."""
        batch: list[Volume] = []
        for volume in frames:
            batch.append(volume)
            if len(batch) >= max(1, self.acceleration.frames_per_call):
                yield from self._synthesise_frames(batch, settings, profile, progress)
                batch = []
        if batch:
            yield from self._synthesise_frames(batch, settings, profile, progress)

    def _checked_factor(self, volume: Volume, settings: PredictionSettings, axis: int) -> float:
        """The factor to predict `volume` with, refusing what cannot be super-resolved."""
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
                          f"(x{self.trained_factors[1]:g}); expect lower quality", stacklevel=3)
        return factor

    def _synthesise_frames(self, volumes: list[Volume], settings: PredictionSettings, profile: SliceProfile,
                           progress: Callable[[int], None] | None) -> list[Prediction]:
        first = volumes[0]
        axis = self.slice_axis(first, settings)
        factor = self._checked_factor(first, settings, axis)
        for volume in volumes[1:]:
            if volume.shape != first.shape or not np.allclose(volume.spacing, first.spacing):
                raise IsrnetError(f"a frame of shape {volume.shape} (spacing {volume.spacing}) among frames of shape "
                                  f"{first.shape} (spacing {first.spacing}); the frames of a time series share one grid")
        stacks = [slices_first(volume, axis) for volume in volumes]
        prepared = [prepare_volume(volume, axis, self.normalisation) for volume in volumes]
        normalised = np.stack([array for array, _ in prepared]) if len(volumes) > 1 else prepared[0][0]
        output = synthesise_slices(self.network, normalised, factor, profile.thickness_mm / stacks[0].spacing[0],
                                   self.device, settings.keep_input, settings.tta, progress,
                                   replace(self.acceleration, crop_to_anatomy=not settings.whole_slices),
                                   settings.conditioning_factor)
        outputs = output if len(volumes) > 1 else output[None]
        predictions = []
        for stack, (_, inversion), synthesised in zip(stacks, prepared, outputs):
            synthesised = inversion.intensities(synthesised)
            if settings.keep_input:  # exact copies of the input where output and input slices coincide
                step = np.arange(synthesised.shape[0]) / factor
                exact = np.flatnonzero(np.abs(step - np.round(step)) < 1e-6)
                synthesised[exact] = stack.array.astype(np.float32)[np.round(step[exact]).astype(int)]
            result = restore_axes(upsampled_volume(stack, synthesised, factor), axis)
            predictions.append(Prediction(result, settings, profile, axis, stack.spacing[0] / result.spacing[axis]))
        return predictions

    def predict_array(self, array: np.ndarray, spacing: tuple[float, float, float],
                      settings: PredictionSettings = PredictionSettings()) -> tuple[np.ndarray, tuple[float, ...]]:
        """In-memory use: array + spacing in, array + spacing out (identity direction, zero origin)."""
        result = self.predict(Volume(np.asarray(array), spacing), settings)
        return result.array, result.spacing


def _cases_keeping_start(checkpoint: Path) -> dict[str, float]:
    """For a run's final checkpoint with its starting checkpoint beside it: the training cases its guard's witness
    sent back to the starting weights ({} for any other file, or when a record is missing)."""
    folder = checkpoint.parent
    if checkpoint.name != "checkpoint_final.pth" or checkpoint_in(folder, ("start",)) is None or \
            not (folder / DEBUG_FILE).is_file():
        return {}
    return RunRecord.load(folder / DEBUG_FILE).cases_keeping_start
