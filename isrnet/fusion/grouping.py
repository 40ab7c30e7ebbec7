"""Which stacks belong to one patient, for `isr_fuse -i FOLDER -o OUT_FOLDER`.

A stack's patient is the part of its case name before `__` (`P01__sag`, `P01__cor` -> P01), or the patient
whose list names it in dataset.json's `"patients": {"P01": ["P01_sag", "P01_cor"]}` (dataset.json in the folder
or the one above it, as in a raw dataset's imagesTr/). nnU-Net's `_0000` stays a channel suffix, never a
grouping. A stack that matches neither is a patient of its own (fusing one stack = predicting it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from isrnet.datasets import case_name
from isrnet.errors import IsrnetError

PATIENT_SEPARATOR = "__"


@dataclass
class Patient:
    name: str
    stacks: list[Path]


def _patients_map(folder: Path) -> dict[str, list[str]]:
    for candidate in (folder / "dataset.json", folder.parent / "dataset.json"):
        if candidate.is_file():
            try:
                content = json.loads(candidate.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise IsrnetError(f"{candidate} is not valid JSON ({error})") from None
            patients = content.get("patients", {}) if isinstance(content, dict) else {}
            if not isinstance(patients, dict) or not all(isinstance(v, list) for v in patients.values()):
                raise IsrnetError(f"{candidate}: 'patients' must map a patient to a list of case names")
            return patients
    return {}


def group_stacks(folder: Path, inputs: list[Path]) -> list[Patient]:
    """Patients (sorted by name) of the stacks `inputs` found in `folder`."""
    by_case = {case_name(path): path for path in inputs}
    owner: dict[str, str] = {}
    for patient, cases in _patients_map(folder).items():
        for case in cases:
            if case not in by_case:
                raise IsrnetError(f"dataset.json 'patients' names {case} for {patient}, but {folder} has no such "
                                  f"stack")
            if case in owner:
                raise IsrnetError(f"dataset.json 'patients' names {case} for both {owner[case]} and {patient}")
            owner[case] = str(patient)
    groups: dict[str, list[Path]] = {}
    for case, path in by_case.items():
        patient = owner.get(case) or (case.split(PATIENT_SEPARATOR, 1)[0] if PATIENT_SEPARATOR in case else case)
        groups.setdefault(patient, []).append(path)
    return [Patient(name, sorted(paths)) for name, paths in sorted(groups.items())]
