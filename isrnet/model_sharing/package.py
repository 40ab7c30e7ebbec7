"""Model files: slim checkpoints (weights only), shipped weights, and single-file model archives.

An archive (`isr_export_model`) is a zip holding `manifest.json` (format, dataset, run, SHA-256 of every
member), `checkpoint_final.pth` (weights without optimizer state), `plans.json`, `provenance.json` and, when
present, `progress.png`. `isr_install_model` checks it completely before anything is written, then unpacks it
into `$isrnet_results/DatasetXXX_Name/<run>/` under a temporary name and renames it into place.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import torch

from isrnet import __version__, paths
from isrnet.datasets import DATASET_PATTERN, available_datasets
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.experiment_planning.plans_file import plans_beside, plans_from_json
from isrnet.runs import Run
from isrnet.model_sharing.provenance import run_provenance
from isrnet.training.checkpointing import check_compatible, load_checkpoint, network_from_checkpoint, save_checkpoint
from isrnet.utilities.files import atomic_folder, atomic_write_bytes, save_json

ARCHIVE_FORMAT = "isrnet-model-1"
REQUIRED_MEMBERS = ("manifest.json", "checkpoint_final.pth", "plans.json", "provenance.json")
OPTIONAL_MEMBERS = ("progress.png",)

SLIM_KEYS = ("network", "state_dict", "stage", "dataset", "isrnet_version", "trained_factors", "iteration",
             "total_iterations", "best_psnr")


def slim_checkpoint(checkpoint: dict) -> dict:
    """What inference and fine-tuning need: weights, network, trained factors; no optimizer, no loss history."""
    slim = {key: checkpoint.get(key) for key in SLIM_KEYS}
    slim["state_dict"] = {name: tensor.detach().cpu().clone() for name, tensor in checkpoint["state_dict"].items()}
    slim["history"] = {"validation": checkpoint.get("history", {}).get("validation", [])}
    return slim


def finished_run(run_folder: Path) -> tuple[dict, Plans, dict]:
    """(final checkpoint, plans, provenance) of a finished run; errors say what is missing."""
    final = run_folder / "checkpoint_final.pth"
    if not final.is_file():
        hint = " (training is unfinished: continue it with isr_train ... --c)" if \
            (run_folder / "checkpoint_latest.pth").is_file() else ""
        raise IsrnetError(f"{run_folder} has no checkpoint_final.pth{hint}")
    if not (run_folder / "plans.json").is_file():
        raise IsrnetError(f"{run_folder} has no plans.json: it is not a run folder written by isr_train")
    checkpoint = load_checkpoint(final)
    return checkpoint, plans_beside(run_folder), run_provenance(run_folder, checkpoint)


def _checkpoint_bytes(checkpoint: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def write_pretrained(run_folder: Path, folder: Path, extra: dict | None = None) -> tuple[Path, Path]:
    """`<stage>.pth` (slim) and `<stage>.json` (provenance + `extra`) in `folder`: the shipped-weights format."""
    checkpoint, _, provenance = finished_run(run_folder)
    provenance.update(extra or {})
    stage = provenance["stage"]
    weights, record = folder / f"{stage}.pth", folder / f"{stage}.json"
    data = _checkpoint_bytes(slim_checkpoint(checkpoint))
    atomic_write_bytes(data, weights)
    provenance["file"] = {"name": weights.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    save_json(provenance, record)
    return weights, record


def _without_case_names(record: dict) -> dict:
    """A provenance record whose dataset lists (and those it was initialised from) give counts, not case names:
    clinical case names are often patient identifiers."""
    record = dict(record)
    if isinstance(record.get("dataset"), dict) and isinstance(record["dataset"].get("cases"), list):
        record["dataset"] = {**record["dataset"], "cases": len(record["dataset"]["cases"])}
    if isinstance(record.get("initialised_from"), dict):
        record["initialised_from"] = _without_case_names(record["initialised_from"])
    return record


def export_model(run_folder: Path, destination: Path, extra: dict | None = None) -> Path:
    """Pack the finished run in `run_folder` into one zip archive at `destination` (atomic).

    Case names stay behind (plans' per-case decisions, provenance case lists): they can identify patients,
    and a colleague's scans get their own per-case decisions from their own spacing anyway.
    """
    checkpoint, plans, provenance = finished_run(run_folder)
    plans = {**plans.as_json(), "cases": {}}
    provenance = _without_case_names({**provenance, **(extra or {})})
    members = {"checkpoint_final.pth": _checkpoint_bytes(slim_checkpoint(checkpoint)),
               "plans.json": json.dumps(plans, indent=2).encode(),
               "provenance.json": json.dumps(provenance, indent=2).encode()}
    for name in OPTIONAL_MEMBERS:
        if (run_folder / name).is_file():
            members[name] = (run_folder / name).read_bytes()
    manifest = {"format": ARCHIVE_FORMAT, "dataset": provenance["dataset"]["name"], "run": run_folder.name,
                "stage": provenance["stage"], "exported_with": f"isrnet {__version__}",
                "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, data in members.items():
            archive.writestr(name, data)
    atomic_write_bytes(buffer.getvalue(), destination)
    return destination


def _is_pipeline_run(name: str) -> bool:
    """A run of a stage users train (an archive can name no other folder)."""
    try:
        Run.parse("", name, pipeline_only=True)
        return True
    except IsrnetError:
        return False


def _check_manifest(path: Path, manifest: object) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise IsrnetError(f"{path}: archive format {found!r} is not {ARCHIVE_FORMAT!r}; export it again with "
                          f"this isrnet version")
    if not isinstance(manifest.get("sha256"), dict):
        raise IsrnetError(f"{path}: the manifest lists no checksums; the archive is damaged")
    if not isinstance(manifest.get("dataset"), str) or not DATASET_PATTERN.match(manifest["dataset"]):
        raise IsrnetError(f"{path}: manifest names no valid dataset ({manifest.get('dataset')!r})")
    if not isinstance(manifest.get("run"), str) or not _is_pipeline_run(manifest["run"]):
        raise IsrnetError(f"{path}: manifest names no valid run ({manifest.get('run')!r}; expected e.g. ssft or "
                          f"ssft__tag)")
    return manifest


def read_archive(path: Path) -> tuple[dict, dict[str, bytes]]:
    """(manifest, members) of a model archive, fully checked: format, names, members, checksums."""
    if not path.is_file():
        raise IsrnetError(f"{path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [name for name in REQUIRED_MEMBERS if name not in names]
            if missing:
                raise IsrnetError(f"{path} is not an isrnet model archive: it lacks {', '.join(missing)}")
            members = {name: archive.read(name) for name in REQUIRED_MEMBERS + OPTIONAL_MEMBERS if name in names}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise IsrnetError(f"{path} is not a readable zip archive ({error}); was it copied completely?") from None
    try:
        manifest = _check_manifest(path, json.loads(members.pop("manifest.json")))
    except (ValueError, UnicodeDecodeError):
        raise IsrnetError(f"{path}: manifest.json is not valid JSON; the archive is damaged") from None
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != manifest["sha256"].get(name):
            raise IsrnetError(f"{path}: {name} does not match its checksum; the file is damaged")
    return manifest, members


def _verified_weights(path: Path, members: dict[str, bytes]) -> tuple[dict, Plans]:
    """(checkpoint, plans) from an archive (its plans migrated from an earlier format), proven to build the plans'
    network and load into it."""
    try:
        plans = plans_from_json(json.loads(members["plans.json"]), f"{path}: plans.json",
                                "export the model again with this isrnet")
        with io.BytesIO(members["checkpoint_final.pth"]) as buffer:
            # weights_only: an archive from someone else can never run code while it is read
            checkpoint = torch.load(buffer, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or not {"network", "state_dict"} <= checkpoint.keys():
            raise ValueError("not an isrnet checkpoint")
        check_compatible(checkpoint, plans.network, str(path))
        network_from_checkpoint({"network": plans.network, "state_dict": checkpoint["state_dict"]})
    except IsrnetError:
        raise
    except Exception as error:  # torch and JSON raise many types for damaged or foreign content
        raise IsrnetError(f"{path}: the weights do not load into the network its plans describe "
                          f"({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})") from None
    return checkpoint, plans


def install_model(path: Path, dataset: str | None = None, overwrite: bool = False) -> Path:
    """Unpack a model archive into `$isrnet_results/<dataset>/<run>/`; returns that folder.

    `dataset` installs under another DatasetXXX_Name (e.g. when the archive's ID is taken here).
    Everything is checked before anything is written; an installed run being replaced is moved aside first
    and put back if the replacement fails.
    """
    manifest, members = read_archive(path)
    target_dataset = dataset or manifest["dataset"]
    if not DATASET_PATTERN.match(target_dataset):
        raise IsrnetError(f"--as {target_dataset}: use a full dataset name like Dataset042_KneeT2")
    number = int(DATASET_PATTERN.match(target_dataset).group(1))
    clash = [name for name in available_datasets()
             if int(DATASET_PATTERN.match(name).group(1)) == number and name != target_dataset]
    if clash:
        raise IsrnetError(f"dataset ID {number:03d} is already used here by {', '.join(clash)}; install under "
                          f"another ID with --as DatasetNNN_{target_dataset.split('_', 1)[1]}")
    checkpoint, plans = _verified_weights(path, members)
    plans.dataset = target_dataset
    target = paths.results_folder() / target_dataset / manifest["run"]
    if target.exists() and not overwrite:
        raise IsrnetError(f"{target} already exists; use --overwrite to replace it")
    try:
        with atomic_folder(target) as temporary:
            save_checkpoint(checkpoint, temporary / "checkpoint_final.pth")
            save_json(plans.as_json(), temporary / "plans.json")
            provenance = json.loads(members["provenance.json"])
            provenance["installed_from"] = {"archive": str(path.resolve()), "as": target_dataset}
            save_json(provenance, temporary / "provenance.json")
            if "progress.png" in members:
                atomic_write_bytes(members["progress.png"], temporary / "progress.png")
    except OSError as error:
        raise IsrnetError(f"could not install into {target} ({error.strerror or error}); nothing was changed") from None
    return target
