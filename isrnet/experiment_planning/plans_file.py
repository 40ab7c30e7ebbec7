"""plans.json: where it lives, reading it (with errors that name the command to run), and `--set KEY=VALUE`.

Every key plans.json carries is read by isrnet (documentation/planning.md lists them with what reads them).
Plans of format 3 are migrated when read (plans.migrated); keys that older versions wrote and that did nothing
are refused with the key's name and the fix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from isrnet import paths
from isrnet.acquisition.slice_profile import ProfileSource, SliceProfile, check_family
from isrnet.errors import IsrnetError
from isrnet.plans import PLANS_FORMAT, RENAMED_CASE_KEYS, Plans, migrated
from isrnet.stages import DatasetKind
from isrnet.utilities.files import load_json

PLANS_FILE = "plans.json"
# Records and identity, not settings: `--set` refuses them.
NOT_SETTABLE = ("plans_format", "dataset", "kind", "overrides", "device")  # device: plan with -device instead
# Keys of a target case's plan that `--set cases.NAME.KEY=VALUE` may change (NAME may be '*': every case).
CASE_KEYS = ("slice_axis", "factor", "slice_profile.thickness_mm", "slice_profile.family", "skip")
# Keys earlier isrnet versions wrote that nothing read (or that are derived now): an old plans.json gets an error.
# (Old video plans also carried cases.*.frames, a clip's length; their height and width name them. A target
# case's `frames` is today's frame count of a time series.)
REMOVED_KEYS = ("plans_name", "planner", "preprocessor", "training.stage", "cases.*.transpose_forward",
                "cases.*.transpose_backward", "cases.*.spacing", "cases.*.slice_spacing", "cases.*.in_plane_spacing",
                "cases.*.target_slice_spacing", "cases.*.height", "cases.*.width")


def plans_path(dataset: str) -> Path:
    return paths.preprocessed_folder() / dataset / PLANS_FILE


def load_plans(dataset: str) -> Plans:
    path = plans_path(dataset)
    if not path.is_file():
        raise IsrnetError(f"dataset {dataset} has no plans ({path}); run: isr_plan_and_preprocess -d {dataset}")
    return read_plans(path, f"isr_plan_and_preprocess -d {dataset}")


def read_plans(path: Path, fix: str) -> Plans:
    """The plans in `path` (a dataset's, a run's or an installed model's), migrated from an earlier format."""
    return plans_from_json(load_json(path), f"{path}", fix)


def plans_beside(folder: Path) -> Plans | None:
    """The plans.json of a run folder or an installed model (what its weights were trained with), if any."""
    path = folder / PLANS_FILE
    return read_plans(path, "train the run again (isr_train) or export the model with this isrnet") \
        if path.is_file() else None


def plans_from_json(record: dict, where: str, fix: str) -> Plans:
    """Typed plans from a plans.json record of this or a migratable earlier format."""
    record = migrated(record)
    check_current(record, where, fix)
    return Plans.from_json(record, where)


def check_current(plans: dict, where: str, fix: str) -> None:
    """An error naming the first removed key (or the format) of plans written by an older isrnet."""
    for key in REMOVED_KEYS:
        if _has_key(plans, key):
            raise IsrnetError(f"{where} was written by an older isrnet: key '{key}' no longer exists (it had no "
                              f"effect or is now derived); plan again with: {fix}")
    if plans.get("plans_format") != PLANS_FORMAT:
        raise IsrnetError(f"{where} has plans format {plans.get('plans_format')!r}, this isrnet reads "
                          f"{PLANS_FORMAT} (and migrates 3); plan again with: {fix}")


def _has_key(plans: dict, dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head == "*":
        return any(isinstance(value, dict) and _has_key(value, rest) for value in plans.values())
    if head not in plans:
        return False
    return True if not rest else isinstance(plans[head], dict) and _has_key(plans[head], rest)


def set_plans_value(plans: Plans, key: str, value: Any) -> list[str]:
    """Change the typed `plans` in place for dotted `key` (as `--set`); returns the keys changed."""
    record = plans.as_json()
    changed = set_dotted(record, key, value)
    updated = Plans.from_json(record, f"--set {key}")
    for name in updated.__dataclass_fields__:
        setattr(plans, name, getattr(updated, name))
    return changed


def set_dotted(plans: dict, key: str, value: Any) -> list[str]:
    """plans['a']['b'] = value for key 'a.b' of a plans.json record; returns the keys changed ('cases.*.x'
    expands to every case).

    Unknown keys are an error (a typo must not pass silently), and so are records that are not settings.
    """
    parts = key.split(".")
    if parts[0] in NOT_SETTABLE:
        raise IsrnetError(f"'{key}' is a record, not a setting; it cannot be changed with --set")
    if parts[0] == "cases":
        return _set_case(plans, key, parts, value)
    node = plans
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise IsrnetError(f"plans have no key '{key}' (at '{part}'); see plans.json for the valid keys")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise IsrnetError(f"plans have no key '{key}'; see plans.json for the valid keys")
    node[parts[-1]] = value
    return [key]


def _set_case(plans: dict, key: str, parts: list[str], value: Any) -> list[str]:
    cases = plans.get("cases", {})
    if len(parts) < 3:
        raise IsrnetError(f"'{key}': per-case keys are cases.NAME.KEY (NAME may be *), e.g. "
                          f"cases.*.slice_profile.family=rect")
    name, field = parts[1], ".".join(parts[2:])
    if field in RENAMED_CASE_KEYS:
        raise IsrnetError(f"'{key}': the key is now cases.{name}.{RENAMED_CASE_KEYS[field]}")
    names = list(cases) if name == "*" else [name]
    if name != "*" and name not in cases:
        raise IsrnetError(f"'{key}': the plans have no case '{name}'; cases: {', '.join(cases) or 'none'}")
    allowed = CASE_KEYS if plans.get("kind") == DatasetKind.TARGET else ("skip",)
    if field not in allowed:
        raise IsrnetError(f"'{key}': a case's settable keys are {', '.join(allowed)}")
    for case in names:
        plan = cases[case]
        if field == "slice_profile.thickness_mm":
            profile = SliceProfile.from_record(plan["slice_profile"]).with_thickness(value, ProfileSource.SET)
            plan["slice_profile"] = profile.plan_record()
        elif field == "slice_profile.family":
            check_family(value, key)
            profile = SliceProfile.from_record(plan["slice_profile"]).with_family(value, ProfileSource.SET)
            plan["slice_profile"] = profile.plan_record()
        else:
            plan[field] = value
    return [f"cases.{case}.{field}" for case in names]
