"""Rigid registration of one super-resolved stack to the reference stack (patients move between series).

SimpleITK: Mattes mutual information (works across contrasts), a fixed-image foreground mask, an Euler
transform about the reference volume's centre, regular-step gradient descent over three resolution levels
(smoothing 2, 1, 0 mm; the last level at voxels of about 1 mm), 150 000 random samples with a fixed seed (the
same stacks give the same answer). The transform maps reference points to stack points: it *is* the motion of the anatomy in the stack
relative to the reference. A registration that raises, makes the metric worse or moves implausibly far is
reported as failed (the caller excludes that stack with a warning).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from isrnet.imageio.reader_writer import to_sitk
from isrnet.imageio.volume import Volume
from isrnet.intensity import foreground_mask

MAX_ROTATION_DEGREES = 20.0  # beyond this a between-series "motion" is a failed registration
MAX_SHIFT_MM = 40.0
FINEST_LEVEL_MM = 1.0  # the last level registers on voxels of about this size (finer costs time, not accuracy)
SAMPLES = 150_000  # metric samples at the last level (random, fixed seed)
SMOOTHING_MM = (2.0, 1.0, 0.0)


@dataclass
class Registration:
    ok: bool
    transform: sitk.Euler3DTransform  # reference point -> stack point (identity when not ok)
    message: str = ""
    metric_before: float | None = None
    metric_after: float | None = None
    iterations: int = 0
    details: dict = field(default_factory=dict)

    @property
    def rotation(self) -> np.ndarray:
        return np.asarray(self.transform.GetMatrix()).reshape(3, 3)

    def motion_in_frame(self, frame: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """(rotation vector in degrees, rotation angle in degrees, translation in mm), expressed on the axes of
        `frame` (columns: world directions of the reference stack's array axes)."""
        rotation = frame.T @ self.rotation @ frame
        angle = float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0))))
        axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0],
                         rotation[1, 0] - rotation[0, 1]])
        norm = np.linalg.norm(axis)
        vector = axis / norm * angle if norm > 1e-12 else np.zeros(3)
        return vector, angle, frame.T @ np.asarray(self.transform.GetTranslation())

    def as_record(self, frame: np.ndarray) -> dict:
        vector, angle, shift = self.motion_in_frame(frame)
        return {"ok": self.ok, "message": self.message, "rotation_deg": round(angle, 4),
                "rotation_vector_deg": [round(float(v), 4) for v in vector],
                "translation_mm": [round(float(v), 4) for v in shift],
                "translation_norm_mm": round(float(np.linalg.norm(shift)), 4),
                "centre_world_mm": [round(float(v), 3) for v in self.transform.GetCenter()],
                "metric_before": self.metric_before, "metric_after": self.metric_after,
                "iterations": self.iterations, "matrix_world": self.rotation.round(6).tolist(),
                "translation_world_mm": [round(float(v), 4) for v in self.transform.GetTranslation()]}


def identity_at(centre: np.ndarray) -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(c) for c in centre))
    return transform


def volume_centre(volume: Volume) -> np.ndarray:
    """World position of the centre of the volume's array."""
    return volume.index_to_world((np.asarray(volume.shape) - 1) / 2.0)


def _registration_image(volume: Volume) -> sitk.Image:
    """Float32 image, block-averaged to voxels of about FINEST_LEVEL_MM (every level, and the metric, cheaper)."""
    image = to_sitk(volume.with_array(volume.array.astype(np.float32)))
    factors = [max(1, int(round(FINEST_LEVEL_MM / spacing))) for spacing in image.GetSpacing()]
    return sitk.BinShrink(image, factors) if max(factors) > 1 else image


def register_rigid(reference: Volume, stack: Volume, seed: int = 12345) -> Registration:
    """The rigid motion of `stack` relative to `reference` (both in world coordinates already)."""
    centre = volume_centre(reference)
    fixed, moving = _registration_image(reference), _registration_image(stack)
    mask = sitk.GetImageFromArray(foreground_mask(sitk.GetArrayFromImage(fixed)).astype(np.uint8))
    mask.CopyInformation(fixed)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    masked = max(int(sitk.GetArrayViewFromImage(mask).sum()), 1)
    method.SetMetricSamplingPercentage(min(1.0, SAMPLES / masked), seed)
    method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4, numberOfIterations=200,
                                                    relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel(list(SMOOTHING_MM))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    initial = identity_at(centre)  # optimised in place
    method.SetInitialTransform(initial, inPlace=True)
    try:
        before = method.MetricEvaluate(fixed, moving)
        method.Execute(fixed, moving)
        after = method.MetricEvaluate(fixed, moving)
    except RuntimeError as error:  # SimpleITK reports e.g. "too many samples map outside moving image buffer"
        return Registration(False, identity_at(centre), f"registration failed ({str(error).strip().splitlines()[-1][:160]})")
    result = Registration(True, initial, "", round(float(before), 6), round(float(after), 6),
                          int(method.GetOptimizerIteration()),
                          {"stop": method.GetOptimizerStopConditionDescription()})
    _, angle, shift = result.motion_in_frame(np.eye(3))
    if after > before + 1e-6:
        return _failed(result, centre, f"mutual information got worse ({before:.4f} -> {after:.4f})")
    if angle > MAX_ROTATION_DEGREES or np.linalg.norm(shift) > MAX_SHIFT_MM:
        return _failed(result, centre, f"implausible motion between series ({angle:.1f} degrees, "
                                       f"{np.linalg.norm(shift):.1f} mm)")
    return result


def _failed(result: Registration, centre: np.ndarray, message: str) -> Registration:
    result.ok, result.message = False, message
    result.details["found"] = {"matrix": result.rotation.round(6).tolist(),
                               "translation": list(result.transform.GetTranslation())}
    result.transform = identity_at(centre)
    return result
