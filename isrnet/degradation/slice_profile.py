"""Which slice profile a case gets, and why: the one place that applies the precedence.

Thickness (FWHM), first that applies:
1. `dataset.json` `slice_thickness_mm` (the user's word; a number or case -> number);
2. the DICOM header's SliceThickness, when plausible (PLAUSIBLE_RATIO times the slice spacing);
3. estimated from the volume (`estimation.estimate_slice_profile`);
4. the slice spacing, when the estimate is impossible (too few slices, noise only), with a note saying why.
Family ('gaussian' or 'rect'): `dataset.json` `slice_profile`, else the estimate (at the known thickness when
there is one), else 'gaussian'. `--set cases.NAME.slice_thickness=... / slice_profile=...` at planning and
`--slice-thickness` at prediction override all of these.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from isrnet.degradation.estimation import ProfileEstimate, estimate_slice_profile, family_at_width
from isrnet.errors import IsrnetError

PLAUSIBLE_RATIO = (0.25, 2.5)  # a header's thickness outside this many slice spacings is not believed
LOW_CONFIDENCE = 0.25  # an estimate below this confidence gets a note asking for the thickness
DEFAULT_FAMILY = "gaussian"


@dataclass(frozen=True)
class SliceProfile:
    """A case's slice profile with the source of each part."""
    thickness_mm: float
    family: str
    thickness_source: str  # 'dataset.json', 'dicom', 'estimated', 'spacing (default)', 'plans', '--slice-thickness'
    family_source: str  # 'dataset.json', 'estimated', 'default'
    confidence: float  # 1 for a header or dataset.json, the estimate's confidence, 0 for the default
    notes: list[str] = field(default_factory=list)
    estimate: dict | None = None  # the estimator's full answer, where it ran

    def as_record(self) -> dict:
        return asdict(self)


def plausible_thickness(thickness_mm: float | None, slice_spacing: float) -> bool:
    low, high = PLAUSIBLE_RATIO
    return bool(thickness_mm) and low * slice_spacing <= float(thickness_mm) <= high * slice_spacing


def decide_slice_profile(stack: np.ndarray, spacing: tuple[float, float, float],
                         header_thickness: float | None = None, dataset_thickness: float | None = None,
                         dataset_family: str | None = None) -> SliceProfile:
    """The profile of a slices-first `stack` with `spacing` (slice, row, column), by the module's precedence."""
    slice_spacing = float(spacing[0])
    notes: list[str] = []
    thickness, source = None, None
    if dataset_thickness:
        thickness, source = float(dataset_thickness), "dataset.json"
    elif plausible_thickness(header_thickness, slice_spacing):
        thickness, source = float(header_thickness), "dicom"
    elif header_thickness:
        notes.append(f"DICOM SliceThickness {header_thickness:g} mm ignored: implausible for {slice_spacing:g} mm "
                     f"spacing ({PLAUSIBLE_RATIO[0]:g}-{PLAUSIBLE_RATIO[1]:g}x)")
    family, family_source, confidence, estimate = dataset_family, "dataset.json", 1.0, None
    try:
        if thickness is None:
            found: ProfileEstimate = estimate_slice_profile(stack, spacing)
            thickness, source, confidence = found.fwhm_mm, "estimated", found.confidence
            estimate = asdict(found)
            if confidence < LOW_CONFIDENCE:
                notes.append(f"low-confidence estimate ({confidence:.2f}): if you know the slice thickness, put it in "
                             f"dataset.json as slice_thickness_mm")
            if family is None:
                family, family_source = found.family, "estimated"
        elif family is None:
            family, margin = family_at_width(stack, spacing, thickness)
            family_source, estimate = "estimated", {"family_margin": float(margin)}
    except IsrnetError as error:
        notes.append(f"not estimated: {error}")
    if thickness is None:
        thickness, source, confidence = slice_spacing, "spacing (default)", 0.0
    if family is None:
        family, family_source = DEFAULT_FAMILY, "default"
    return SliceProfile(round(float(thickness), 4), family, source, family_source, round(float(confidence), 3),
                        notes, estimate)
