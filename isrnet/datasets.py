"""Dataset IDs and names, `dataset.json`, and the cases a raw dataset holds.

`-d 1`, `-d 001` and `-d Dataset001_Name` resolve to the folder name `Dataset001_Name`, found in the
raw, preprocessed or results folder. See documentation/dataset_format.md for the format.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from isrnet import paths
from isrnet.acquisition import ACQUISITION_PROFILES
from isrnet.errors import IsrnetError
from isrnet.stages import DatasetKind
from isrnet.imageio.formats import FRAME_ENDINGS, VIDEO_ENDINGS, image_ending, is_dicom_folder, strip_ending

DATASET_PATTERN = re.compile(r"^Dataset(\d{3})_(\w+)$")
KINDS = tuple(str(kind) for kind in DatasetKind)


def _datasets_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and DATASET_PATTERN.match(p.name))


def available_datasets() -> list[str]:
    """Every DatasetXXX_Name folder in the raw, preprocessed and results folders."""
    found = set()
    for folder in (paths.raw_folder(), paths.preprocessed_folder(), paths.results_folder()):
        found.update(_datasets_in(folder))
    return sorted(found)


def resolve_dataset(identifier: str | int) -> str:
    """'1', '001', 1 or 'Dataset001_Name' -> 'Dataset001_Name'; errors list what exists."""
    text = str(identifier).strip()
    existing = available_datasets()
    listing = ", ".join(existing) if existing else f"none (raw folder: {paths.raw_folder()})"
    if DATASET_PATTERN.match(text):
        if text in existing:
            return text
        raise IsrnetError(f"dataset {text} not found. Datasets that exist: {listing}")
    if not text.isdigit():
        raise IsrnetError(f"'{text}' is not a dataset ID: use 1, 001 or Dataset001_Name. "
                          f"Datasets that exist: {listing}")
    number = int(text)
    matches = [name for name in existing if int(DATASET_PATTERN.match(name).group(1)) == number]
    if not matches:
        raise IsrnetError(f"no dataset with ID {number:03d}. Datasets that exist: {listing}")
    if len(matches) > 1:
        raise IsrnetError(f"dataset ID {number:03d} is ambiguous: {', '.join(matches)}; "
                          f"give the full name or rename one")
    return matches[0]


def dataset_id(name: str) -> int:
    return int(DATASET_PATTERN.match(name).group(1))


DICOM_THICKNESS_KEY = "dicom_slice_thickness_mm"  # written by isr_convert: a header fact, not the user's word
PROFILE_KEYS = {"thickness_mm", "family"}  # what dataset.json may declare of a slice profile


@dataclass
class DatasetInfo:
    """The content of dataset.json. The user's word on the slice profile is `slice_profile`: a record
    {"thickness_mm": ..., "family": ...} (either part optional) for every case, or an object case -> record;
    the older forms (`slice_thickness_mm` a number or case -> number, `slice_profile` a family string or
    case -> family) are still read."""
    name: str
    file_ending: str = ".nii.gz"
    kind: DatasetKind = DatasetKind.TARGET
    slice_profile: dict[str, dict] = field(default_factory=dict)  # case ('*': every case) -> declared record
    dicom_slice_thickness_mm: dict[str, float] | None = None  # the DICOM headers' SliceThickness, kept by isr_convert
    description: str = ""
    licence: str = ""
    extra: dict = field(default_factory=dict)

    def _declared(self, case: str) -> dict:
        return {**self.slice_profile.get("*", {}), **self.slice_profile.get(case, {})}

    def thickness_for(self, case: str) -> float | None:
        """The declared slice thickness (FWHM, mm) of `case`, if any."""
        value = self._declared(case).get("thickness_mm")
        return None if value is None else float(value)

    def dicom_thickness_for(self, case: str) -> float | None:
        value = (self.dicom_slice_thickness_mm or {}).get(case)
        return None if value is None else float(value)

    def family_for(self, case: str) -> str | None:
        return self._declared(case).get("family")


def declared_profiles(content: dict, where: Path) -> dict[str, dict]:
    """dataset.json's word on the slice profile as case ('*': every case) -> {"thickness_mm", "family"}."""
    declared: dict[str, dict] = {}

    def put(case: str, key: str, value) -> None:
        declared.setdefault(case, {})[key] = value

    thickness = content.get("slice_thickness_mm")  # the older form
    if thickness is not None and not isinstance(thickness, (int, float, dict)):
        raise IsrnetError(f"{where}: slice_thickness_mm must be a number or an object case -> number")
    for case, value in (thickness.items() if isinstance(thickness, dict) else [("*", thickness)]):
        if value is not None:
            put(case, "thickness_mm", value)
    profile = content.get("slice_profile")
    if isinstance(profile, str):  # the older form: one family for every case
        put("*", "family", profile)
    elif isinstance(profile, dict) and profile and set(profile) <= PROFILE_KEYS:  # one record for every case
        for key, value in profile.items():
            put("*", key, value)
    elif isinstance(profile, dict) and not set(profile) & PROFILE_KEYS and all(isinstance(value, str)
                                                                              for value in profile.values()):
        for case, family in profile.items():  # the older form: case -> family
            put(case, "family", family)
    elif isinstance(profile, dict):
        for case, record in profile.items():
            if not isinstance(record, dict) or not set(record) <= PROFILE_KEYS:
                raise IsrnetError(f"{where}: slice_profile must be {{\"thickness_mm\": mm, \"family\": "
                                  f"\"gaussian\" or \"rect\"}}, or an object case -> such a record (got {record!r})")
            for key, value in record.items():
                put(case, key, value)
    elif profile is not None:
        raise IsrnetError(f"{where}: slice_profile must be a record {{\"thickness_mm\", \"family\"}} or an object "
                          f"case -> record (got {profile!r})")
    for case, record in declared.items():
        if "family" in record and record["family"] not in ACQUISITION_PROFILES:
            raise IsrnetError(f"{where}: slice profile family must be one of {', '.join(ACQUISITION_PROFILES)} "
                              f"(got {record['family']!r} for {'every case' if case == '*' else case})")
        if "thickness_mm" in record and not (isinstance(record["thickness_mm"], (int, float))
                                             and record["thickness_mm"] > 0):
            raise IsrnetError(f"{where}: slice_profile thickness_mm must be a positive number in mm "
                              f"(got {record['thickness_mm']!r})")
    return declared


def raw_dataset_folder(name: str) -> Path:
    folder = paths.raw_folder() / name
    if not folder.is_dir():
        raise IsrnetError(f"raw dataset folder {folder} does not exist; convert the dataset first "
                          f"(see documentation/dataset_format.md)")
    return folder


def load_dataset_info(folder: Path) -> DatasetInfo:
    """Read and check `folder/dataset.json`."""
    path = folder / "dataset.json"
    if not path.is_file():
        raise IsrnetError(f"{path} is missing; it needs at least "
                          '{"name": "...", "file_ending": ".nii.gz"} (see documentation/dataset_format.md)')
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IsrnetError(f"{path} is not valid JSON ({error}); fix the file") from None
    if not isinstance(content, dict):
        raise IsrnetError(f"{path} must hold a JSON object with at least 'name' and 'file_ending'")
    missing = [key for key in ("name", "file_ending") if key not in content]
    if missing:
        raise IsrnetError(f"{path} lacks {', '.join(repr(k) for k in missing)}; "
                          '{"name": "...", "file_ending": ".nii.gz"} is the minimum')
    kind = content.get("kind", "target")
    if kind not in KINDS:
        raise IsrnetError(f"{path}: kind '{kind}' is unknown; use one of {', '.join(KINDS)}")
    declared = declared_profiles(content, path)
    header = content.get(DICOM_THICKNESS_KEY)
    if header is not None and not (isinstance(header, dict) and all(isinstance(v, (int, float)) for v in header.values())):
        raise IsrnetError(f"{path}: {DICOM_THICKNESS_KEY} must be an object case -> number (mm)")
    known = {"name", "file_ending", "kind", "slice_thickness_mm", "slice_profile", DICOM_THICKNESS_KEY,
             "description", "licence"}
    return DatasetInfo(str(content["name"]), str(content["file_ending"]), DatasetKind(kind), declared, header,
                       str(content.get("description", "")), str(content.get("licence", "")),
                       {k: v for k, v in content.items() if k not in known})


def case_name(path: Path) -> str:
    """Case identifier of an image file or DICOM folder; nnU-Net's channel suffix `_0000` is dropped."""
    name = strip_ending(path) if path.is_file() else path.name
    return name[:-5] if name.endswith("_0000") else name


def list_cases(folder: Path) -> dict[str, Path]:
    """Image files (any supported ending) and DICOM series folders in `folder`, by case name."""
    if not folder.is_dir():
        return {}
    cases: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if (entry.is_file() and image_ending(entry)) or (entry.is_dir() and is_dicom_folder(entry)):
            name = case_name(entry)
            if name in cases:
                raise IsrnetError(f"{folder}: two entries give case '{name}' "
                                  f"({cases[name].name} and {entry.name}); rename one")
            cases[name] = entry
    return cases


def list_clips(folder: Path) -> dict[str, Path]:
    """Video clips in `folder`: video files, or sub-folders of frame images (sorted by name)."""
    if not folder.is_dir():
        return {}
    clips = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_ENDINGS:
            clips[entry.stem] = entry
        elif entry.is_dir() and any(p.suffix.lower() in FRAME_ENDINGS for p in entry.iterdir()):
            clips[entry.name] = entry
    return clips


def training_cases(name: str) -> tuple[DatasetInfo, dict[str, Path]]:
    """dataset.json and imagesTr/ cases (clips for video datasets) of a raw dataset; errors if empty."""
    folder = raw_dataset_folder(name)
    info = load_dataset_info(folder)
    images = folder / "imagesTr"
    cases = list_clips(images) if info.kind == DatasetKind.VIDEO else list_cases(images)
    if not cases:
        what = "video files or frame folders" if info.kind == DatasetKind.VIDEO else \
            "images (.nii.gz/.nii/.nrrd/.mha) or DICOM series folders"
        raise IsrnetError(f"{images} holds no {what}")
    return info, cases


def verify_dataset_integrity(name: str) -> list[str]:
    """Check a raw dataset's structure: dataset.json, training cases, and referenceTr/ against imagesTr/.

    A reference without an image is an error (a misnamed file would silently never be evaluated); images without
    a reference are returned as notes (evaluation skips them). Voxel checks (NaN/Inf, 2D, too few slices) are the
    fingerprint's, which reads every image.
    """
    info, cases = training_cases(name)
    reference = raw_dataset_folder(name) / "referenceTr"
    if info.kind == DatasetKind.VIDEO or not reference.is_dir():
        return []
    references = list_cases(reference)
    extra = sorted(set(references) - set(cases))
    if extra:
        raise IsrnetError(f"{reference}: references without a matching image in imagesTr: {', '.join(extra)}")
    missing = sorted(set(cases) - set(references))
    return [f"{name}: note: no reference for {', '.join(missing)} (evaluation skips them)"] if missing else []
