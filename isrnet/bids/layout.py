"""The scans of a BIDS dataset that `isr_bids` works on, with their sidecar metadata (BIDS inheritance applied).

pybids reads the layout: it already implements the entity parsing, the filters and the inheritance principle
(a top-level `T2w.json` holds for every T2w scan below it, a closer sidecar overrides it), which a hand-written
walker would have to repeat. Only NIfTI images are taken (BIDS raw MR images are NIfTI).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from isrnet.errors import IsrnetError

DATATYPES = ("anat", "func", "dwi")
DEFAULT_DATATYPES = ("anat",)
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
NOT_IMAGES = ("mask", "dseg", "probseg", "sbref", "events", "physio", "stim")  # suffixes isrnet never upsamples


@dataclass(frozen=True)
class Selection:
    """Which scans: empty tuples mean all (participant labels without the 'sub-' prefix, likewise sessions)."""
    participants: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    datatypes: tuple[str, ...] = DEFAULT_DATATYPES


@dataclass
class BidsScan:
    path: Path
    relative: Path  # to the BIDS root
    entities: dict  # pybids' entities: subject, session, datatype, suffix, extension, ...
    metadata: dict = field(default_factory=dict)  # the sidecar fields that hold for this file (inherited)
    companions: dict = field(default_factory=dict)  # extension -> file a derivative needs beside it (dwi: .bval, .bvec)

    @property
    def subject(self) -> str:
        return str(self.entities["subject"])

    @property
    def session(self) -> str | None:
        return str(self.entities["session"]) if self.entities.get("session") is not None else None

    @property
    def datatype(self) -> str:
        return str(self.entities.get("datatype", self.relative.parent.name))

    @property
    def suffix(self) -> str:
        return str(self.entities["suffix"])

    @property
    def stem(self) -> str:
        """The file name without its extension (`sub-01_ses-1_T2w`): the scan's case name in isrnet."""
        name = self.path.name
        return next((name[: -len(e)] for e in NIFTI_EXTENSIONS if name.endswith(e)), name)


def _strip(labels: tuple[str, ...], prefix: str) -> list[str]:
    return [label[len(prefix):] if label.startswith(prefix) else label for label in labels]


def open_layout(bids_dir: Path):
    """pybids' layout of `bids_dir` (not validated: isrnet reads what it needs and says what is missing)."""
    try:
        from bids import BIDSLayout
    except ImportError:
        raise IsrnetError("isr_bids needs pybids: pip install 'isrnet[bids]' (or pip install pybids)") from None
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise IsrnetError(f"BIDS_DIR {bids_dir}: no such folder")
    if not (bids_dir / "dataset_description.json").is_file():
        raise IsrnetError(f"BIDS_DIR {bids_dir} has no dataset_description.json: is it the root of a BIDS dataset?")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pybids warns about optional fields of dataset_description.json
        try:
            return BIDSLayout(str(bids_dir), validate=False)
        except Exception as error:  # pybids raises its own exception types for unreadable datasets
            raise IsrnetError(f"BIDS_DIR {bids_dir}: pybids cannot read it: {error}") from None


def _companions(layout, image) -> dict[str, Path]:
    """A diffusion scan's gradient table (.bval, .bvec, inherited where BIDS allows): unchanged by super-resolution
    along the slice axis, and needed beside its derivative."""
    if image.get_entities().get("datatype") != "dwi":
        return {}
    found = {}
    for extension, lookup in ((".bval", layout.get_bval), (".bvec", layout.get_bvec)):
        try:
            path = lookup(image.path)
        except Exception:  # pybids raises when none is found, with types that vary by version
            path = None
        if path:
            found[extension] = Path(path)
    return found


def find_scans(bids_dir: Path, selection: Selection = Selection()) -> list[BidsScan]:
    """Every NIfTI scan matching `selection`, sorted by path. Raises when nothing matches (saying what was asked)."""
    unknown = [d for d in selection.datatypes if d not in DATATYPES]
    if unknown:
        raise IsrnetError(f"--datatype {' '.join(unknown)}: isr_bids works on {', '.join(DATATYPES)}")
    layout = open_layout(bids_dir)
    filters: dict = {"datatype": list(selection.datatypes), "extension": list(NIFTI_EXTENSIONS),
                     "return_type": "object"}
    if selection.participants:
        filters["subject"] = _strip(selection.participants, "sub-")
        missing = sorted(set(filters["subject"]) - set(layout.get_subjects()))
        if missing:
            raise IsrnetError(f"--participant-label {' '.join(missing)}: not in {bids_dir} "
                              f"(it has {', '.join(layout.get_subjects()) or 'no subjects'})")
    if selection.sessions:
        filters["session"] = _strip(selection.sessions, "ses-")
    if selection.suffixes:
        filters["suffix"] = list(selection.suffixes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = layout.get(**filters)
        scans = [BidsScan(Path(f.path), Path(f.path).relative_to(Path(layout.root)), f.get_entities(),
                          f.get_metadata(), _companions(layout, f)) for f in files]
    scans = [s for s in scans if s.suffix not in NOT_IMAGES and "subject" in s.entities]
    if not scans:
        asked = ", ".join(f"{key} {' '.join(map(str, value))}" for key, value in filters.items()
                          if key not in ("extension", "return_type"))
        raise IsrnetError(f"no NIfTI scans in {bids_dir} match {asked}")
    return sorted(scans, key=lambda s: str(s.relative))
