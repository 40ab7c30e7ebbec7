"""A case's acquisition through the slice axis, as one record: the slice profile (thickness and family), where
each part came from, and the one place that applies the precedence.

Thickness (FWHM, `thickness_mm`), first that applies:
1. `dataset.json` (the user's word: `slice_profile.thickness_mm`, or the older `slice_thickness_mm`);
2. the DICOM header's SliceThickness, when plausible (PLAUSIBLE_RATIO times the slice spacing);
3. estimated from the volume (`estimation.estimate_slice_profile`);
4. the slice spacing, when the estimate is impossible (too few slices, noise only), with a note saying why.
Family ('gaussian' or 'rect'): `dataset.json`, else the estimate (at the known thickness when there is one), else
'gaussian'. `--set cases.NAME.slice_profile.thickness_mm=... / .family=...` at planning and `--slice-thickness`
at prediction override all of these. `default_profile` is the one place that fills in what nothing decided.

Every stored form (fingerprint, plans, preprocessed properties, prediction sidecars, fusion records) holds
`SliceProfile.as_record()` under the key `slice_profile`; `SliceProfile.from_record` reads any of them back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import Enum

import numpy as np

from isrnet.acquisition.estimation import SEARCH_RANGE, ProfileEstimate, estimate_slice_profile, family_at_width
from isrnet.acquisition.simulation import ACQUISITION_PROFILES
from isrnet.errors import IsrnetError


class ProfileSource(str, Enum):
    """Where a part of the slice profile came from (stored as its value)."""
    DATASET_JSON = "dataset.json"
    DICOM = "dicom"
    ESTIMATED = "estimated"
    SPACING = "spacing (default)"
    DEFAULT = "default"
    PLANS = "plans"
    SET = "--set"
    COMMAND_LINE = "--slice-thickness"
    BIDS_SIDECAR = "BIDS sidecar"  # SliceThickness of the scan's JSON sidecar (isr_bids; BIDS inheritance applied)
    NOT_DECIDED = "not used by prediction"  # the family of a profile whose thickness was given at prediction
    SIMULATED = "simulated by --factor"  # isr_benchmark's own thick slices, simulated from the reference
    FULL_SCAN = "full scan"  # the hidden-slice evaluation: decided on the scan before its slices were thinned

    def __str__(self) -> str:
        return self.value


PLAUSIBLE_RATIO = (0.25, 2.5)  # a header's thickness outside this many slice spacings is not believed
LOW_CONFIDENCE = 0.25  # an estimate below this confidence gets a note asking for the thickness
UNRESOLVED_SHARE = 0.5  # of the spacing: the thickness of slices sharper than the estimate can tell (decide_thickness)
EDGE_TOLERANCE = 0.05  # an estimate within this share of the search range's lower end is at that end
DEFAULT_FAMILY = "gaussian"


@dataclass(frozen=True)
class SliceProfile:
    """A case's slice profile with the source of each part."""
    thickness_mm: float  # FWHM of the slice profile
    family: str  # one of ACQUISITION_PROFILES
    thickness_source: ProfileSource
    family_source: ProfileSource
    confidence: float  # 1 for a header or dataset.json, the estimate's confidence, 0 for the default
    notes: list[str] = field(default_factory=list)
    estimate: dict | None = None  # the estimator's full answer, where it ran

    def as_record(self) -> dict:
        record = asdict(self)
        record["thickness_source"], record["family_source"] = str(self.thickness_source), str(self.family_source)
        return record

    @classmethod
    def from_record(cls, record: dict) -> "SliceProfile":
        """The profile a stored record holds (as_record's output, with or without notes and estimate)."""
        return cls(float(record["thickness_mm"]), record["family"], ProfileSource(record["thickness_source"]),
                   ProfileSource(record["family_source"]), float(record.get("confidence", 0.0)),
                   list(record.get("notes", [])), record.get("estimate"))

    def plan_record(self) -> dict:
        """What a plan keeps of it: the decision and its sources (the notes and estimate stay in the fingerprint)."""
        return {key: value for key, value in self.as_record().items() if key not in ("notes", "estimate")}

    def with_thickness(self, thickness_mm: float, source: ProfileSource) -> "SliceProfile":
        return replace(self, thickness_mm=float(thickness_mm), thickness_source=ProfileSource(source),
                       confidence=1.0)

    def with_family(self, family: str, source: ProfileSource) -> "SliceProfile":
        return replace(self, family=family, family_source=ProfileSource(source))


def default_profile(slice_spacing: float, thickness_mm: float | None = None,
                    thickness_source: ProfileSource = ProfileSource.SPACING) -> SliceProfile:
    """The one place that fills in what nothing decided: thickness = the slice spacing, family gaussian."""
    if thickness_mm:
        return SliceProfile(float(thickness_mm), DEFAULT_FAMILY, ProfileSource(thickness_source),
                            ProfileSource.DEFAULT, 1.0)
    return SliceProfile(float(slice_spacing), DEFAULT_FAMILY, ProfileSource.SPACING, ProfileSource.DEFAULT, 0.0)


def profile_of(record: dict | SliceProfile | None, slice_spacing: float) -> SliceProfile:
    """A stored profile record (plans, properties), or the defaults where there is none."""
    if isinstance(record, SliceProfile):
        return record
    return SliceProfile.from_record(record) if record else default_profile(slice_spacing)


def check_family(family: str, where: str) -> None:
    if family not in ACQUISITION_PROFILES:
        raise IsrnetError(f"{where}: slice profile family '{family}' is unknown; use one of "
                          f"{', '.join(ACQUISITION_PROFILES)}")


def plausible_thickness(thickness_mm: float | None, slice_spacing: float) -> bool:
    low, high = PLAUSIBLE_RATIO
    return bool(thickness_mm) and low * slice_spacing <= float(thickness_mm) <= high * slice_spacing


def decide_thickness(estimate: ProfileEstimate | None, spacing: tuple[float, float, float]) -> tuple[float, str]:
    """(thickness mm, why) when nothing states the thickness, from the estimate (None: it was impossible) and the
    spacing (slice, row, column). The estimate measures the slice axis's blur beyond the in-plane blur, so:
    - no estimate: the slice spacing;
    - an estimate at the lower end of its search (the slices look sharper than anything it can tell apart): the
      larger of the in-plane pixel and UNRESOLVED_SHARE of the spacing;
    - otherwise the estimate, but never below the in-plane pixel (no finer width is visible).
    Chosen on the development source's grid of benchmarks/slice_profile_estimation.py, judged on the others and on
    real scans whose header states the thickness (documentation/planning.md)."""
    slice_spacing, pixel = float(spacing[0]), float(min(spacing[1:]))
    if estimate is None:
        return slice_spacing, "no estimate: the slice spacing"
    if estimate.fwhm_mm <= (1.0 + EDGE_TOLERANCE) * SEARCH_RANGE[0] * slice_spacing:
        thickness = max(pixel, UNRESOLVED_SHARE * slice_spacing)
        return thickness, (f"the estimate ({estimate.fwhm_mm:.3g} mm) is at the lower end of its search: the slices "
                           f"look sharper than it can tell; {thickness:.3g} mm, the larger of the in-plane pixel and "
                           f"{UNRESOLVED_SHARE:g} x the spacing")
    if estimate.fwhm_mm < pixel:
        return pixel, f"the estimate ({estimate.fwhm_mm:.3g} mm) is below the in-plane pixel: the pixel, {pixel:.3g} mm"
    return float(estimate.fwhm_mm), "the estimate"


def decide_slice_profile(stack: np.ndarray, spacing: tuple[float, float, float],
                         dicom_thickness_mm: float | None = None, declared_thickness_mm: float | None = None,
                         declared_family: str | None = None,
                         declared_source: ProfileSource = ProfileSource.DATASET_JSON) -> SliceProfile:
    """The profile of a slices-first `stack` with `spacing` (slice, row, column), by the module's precedence.
    `declared_*` is the user's word (dataset.json, or `declared_source`), `dicom_thickness_mm` the header's
    SliceThickness."""
    slice_spacing = float(spacing[0])
    notes: list[str] = []
    thickness, source = None, None
    if declared_thickness_mm:
        thickness, source = float(declared_thickness_mm), declared_source
    elif plausible_thickness(dicom_thickness_mm, slice_spacing):
        thickness, source = float(dicom_thickness_mm), ProfileSource.DICOM
    elif dicom_thickness_mm:
        notes.append(f"DICOM SliceThickness {dicom_thickness_mm:g} mm ignored: implausible for {slice_spacing:g} mm "
                     f"spacing ({PLAUSIBLE_RATIO[0]:g}-{PLAUSIBLE_RATIO[1]:g}x)")
    family, family_source, confidence, estimate = declared_family, ProfileSource.DATASET_JSON, 1.0, None
    try:
        if thickness is None:
            found: ProfileEstimate = estimate_slice_profile(stack, spacing)
            thickness, why = decide_thickness(found, spacing)
            source, confidence = ProfileSource.ESTIMATED, found.confidence
            estimate = asdict(found)
            if why != "the estimate":
                notes.append(why)
            if confidence < LOW_CONFIDENCE:
                notes.append(f"low-confidence estimate ({confidence:.2f}): if you know the slice thickness, put it in "
                             f"dataset.json as slice_profile.thickness_mm")
            if family is None:
                family, family_source = found.family, ProfileSource.ESTIMATED
        elif family is None:
            family, margin = family_at_width(stack, spacing, thickness)
            family_source, estimate = ProfileSource.ESTIMATED, {"family_margin": float(margin)}
    except IsrnetError as error:
        notes.append(f"not estimated: {error}")
    fallback = default_profile(slice_spacing)
    if thickness is None:
        thickness, source, confidence = fallback.thickness_mm, fallback.thickness_source, fallback.confidence
    if family is None:
        family, family_source = fallback.family, fallback.family_source
    return SliceProfile(round(float(thickness), 4), family, source, family_source, round(float(confidence), 3),
                        notes, estimate)
