"""Where patient-level adaptation can pay: is a case unlike the cases its starting weights were fine-tuned on?

Adaptation is ssft on one case. What it can teach beyond dataset-level ssft is what that case's own pairs show and
the dataset's did not: its noise level, its contrast, its slice profile (documentation/prediction_and_evaluation.md
measures where it paid). So each case is described by its appearance, in the prepared (normalised) array that
training sees, and compared with the dataset's other cases:
  noise      the background noise sigma as a share of the foreground's 5th-95th percentile range
  contrast   the foreground's intensity deciles on that range (a T2-like case against T1 ones differs here)
  profile    the slice profile's family and thickness / spacing
A case alike in all three to another case of the dataset is skipped (the sidecar names that case); a case with no
such twin is adapted (the sidecar says in what it differs from the nearest). Without a dataset (shipped weights, or
a model whose preprocessed data is not on this machine) every case is adapted: it is all the data there is.
The thresholds were read off the development mix of benchmarks/patient_adaptation.py (documentation/
prediction_and_evaluation.md); what the rule gives on other sources is measured there too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isrnet.acquisition.slice_profile import profile_of
from isrnet.intensity import foreground_mask

NOISE_RATIO = 1.5  # noise levels within this factor of each other are alike
NOISE_FLOOR = 0.005  # of the foreground range: below it noise is no different from none
CONTRAST_DISTANCE = 0.05  # mean absolute difference of the deciles (share of the range) still alike
THICKNESS_RATIO = 1.2  # thickness / spacing within this factor is alike (same family)
DECILES = np.linspace(10, 90, 9)
SUBSAMPLE = 2  # every 2nd voxel along each axis is enough for percentiles


@dataclass(frozen=True)
class Appearance:
    """What adaptation could learn from a case, in the prepared array's terms."""
    case: str
    noise: float
    contrast: tuple[float, ...]
    family: str
    thickness_ratio: float

    def as_record(self) -> dict:
        return {"noise": round(self.noise, 4), "contrast": [round(v, 3) for v in self.contrast],
                "family": self.family, "thickness_ratio": round(self.thickness_ratio, 3)}


def appearance(array: np.ndarray, properties: dict) -> Appearance:
    """The appearance of a prepared training case (array [Z, Y, X] or [T, Z, Y, X], the sampler's properties)."""
    frame = np.asarray(array[0] if array.ndim == 4 else array, dtype=np.float32)[::SUBSAMPLE, ::SUBSAMPLE,
                                                                                  ::SUBSAMPLE]
    foreground = frame[foreground_mask(frame)]
    if foreground.size < 10:
        foreground = frame.ravel()
    low, high = np.percentile(foreground, [5, 95])
    spread = max(float(high - low), 1e-6)
    contrast = tuple(float(v) for v in (np.percentile(foreground, DECILES) - low) / spread)
    spacing = float(properties["spacing"][0])
    profile = profile_of(properties.get("slice_profile"), spacing)
    return Appearance(str(properties["case"]), float(properties.get("noise_sigma", 0.0)) / spread, contrast,
                      profile.family, profile.thickness_mm / spacing)


@dataclass(frozen=True)
class Need:
    """Whether to adapt a case, and why in words (for the sidecar)."""
    adapt: bool
    reason: str
    unlike: tuple[str, ...] = ()  # what differs from every other case: 'noise', 'contrast', 'profile'
    nearest: str | None = None  # the dataset case it resembles most

    def as_record(self) -> dict:
        return {"adapt": self.adapt, "reason": self.reason, "unlike": list(self.unlike), "nearest": self.nearest}


def _noise_alike(a: float, b: float) -> bool:
    a, b = max(a, NOISE_FLOOR), max(b, NOISE_FLOOR)
    return max(a, b) / min(a, b) <= NOISE_RATIO


def _contrast_distance(a: Appearance, b: Appearance) -> float:
    return float(np.mean(np.abs(np.subtract(a.contrast, b.contrast))))


def _profile_alike(a: Appearance, b: Appearance) -> bool:
    ratio = max(a.thickness_ratio, b.thickness_ratio) / max(min(a.thickness_ratio, b.thickness_ratio), 1e-6)
    return a.family == b.family and ratio <= THICKNESS_RATIO


def adaptation_need(case: Appearance, dataset: list[Appearance] | None) -> Need:
    """Adapt `case` when it differs from every other case of `dataset` in noise, contrast or profile."""
    others = [other for other in dataset or [] if other.case != case.case]
    if dataset is None:
        return Need(True, "no dataset to compare with (the start was not fine-tuned on a dataset here): the case "
                          "is all the data there is")
    if not others:
        return Need(False, "the start was fine-tuned on this case alone: adapting to it again teaches nothing new")
    checks = {"noise": lambda o: _noise_alike(case.noise, o.noise),
              "contrast": lambda o: _contrast_distance(case, o) <= CONTRAST_DISTANCE,
              "profile": lambda o: _profile_alike(case, o)}
    differences = {o.case: tuple(name for name, alike in checks.items() if not alike(o)) for o in others}
    nearest = min(others, key=lambda o: (len(differences[o.case]), _contrast_distance(case, o))).case
    unlike = differences[nearest]
    if unlike:
        return Need(True, f"unlike every case the start was fine-tuned on (nearest: {nearest}, unlike in "
                          f"{', '.join(unlike)})", unlike, nearest)
    return Need(False, f"like {nearest}, a case the start was fine-tuned on, in noise, contrast and slice profile: "
                       f"dataset-level ssft already learnt what its pairs show", (), nearest)
