"""A run's provenance: how it was trained (command, commit, data, iterations, time) and how it validated.

Built from the run folder that `isr_train` writes (debug.json, checkpoint history, the raw dataset.json),
so it describes what actually happened, not what was intended. Written beside shipped and exported weights.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from isrnet import paths
from isrnet.errors import IsrnetError
from isrnet.runs import DEBUG_FILE, RunRecord
from isrnet.utilities.files import load_json

MAX_CHAIN = 8  # initialised_from links followed (runs started from each other cannot recurse forever)
VALIDATION_NOTE = ("PSNR (dB) on the run's fixed validation batches: pairs cut from the held-out central 10 % "
                   "band of every volume or clip, never used for training; 'cubic' is Catmull-Rom "
                   "interpolation of the same context slices")


def _dataset_record(dataset: str) -> dict:
    record: dict = {"name": dataset}
    info_path = paths.raw_folder() / dataset / "dataset.json"
    if info_path.is_file():
        info = load_json(info_path)
        record.update({key: info[key] for key in ("kind", "description", "source", "licence", "license",
                                                  "numTraining") if key in info})
    preprocessed = paths.preprocessed_folder() / dataset / "plans.json"
    if preprocessed.is_file():
        cases = load_json(preprocessed).get("cases", {})  # plans.json in any format: only which cases are used
        record["cases"] = sorted(name for name, case in cases.items() if not case.get("skip", False))
    return record


def _validation(history: list[dict]) -> dict:
    if not history:
        return {}
    def row(entry: dict) -> dict:
        return {"iteration": entry["iteration"], "psnr": round(entry["psnr"], 3),
                "psnr_cubic": round(entry["psnr_cubic"], 3), "gain_vs_cubic": round(entry["psnr"] - entry["psnr_cubic"], 3)}
    best = max(history, key=lambda entry: entry["psnr"])
    return {"note": VALIDATION_NOTE, "start": row(history[0]), "final": row(history[-1]), "best": row(best)}


def run_provenance(run_folder: Path, checkpoint: dict, depth: int = 0) -> dict:
    """Provenance of the finished run in `run_folder` whose final checkpoint is `checkpoint`."""
    debug_path = run_folder / DEBUG_FILE
    if not debug_path.is_file() and (run_folder / "provenance.json").is_file():  # an installed model
        return load_json(run_folder / "provenance.json")
    if not debug_path.is_file():
        raise IsrnetError(f"{run_folder} has no debug.json: it is not a run folder written by isr_train")
    debug = RunRecord.load(debug_path)
    config = debug.config
    earlier = debug.earlier_commands  # a run continued with --c: every command's share
    record = {
        "stage": config["stage"], "run": run_folder.name, "dataset": _dataset_record(config["dataset"]),
        "command": debug.command or "(not recorded by this isrnet version)",
        "git_commit": debug.git_commit, "started": debug.started,
        "iterations": debug.iterations_done,
        "wall_time_minutes": round((sum(c.get("seconds_this_command") or 0 for c in earlier)
                                    + (debug.seconds_this_command or 0)) / 60, 2),
        "earlier_commands": earlier,
        "budget_minutes": config.get("budget_minutes"), "batch_size": config["batch_size"],
        "patch_size": config["patch_size"], "processes": debug.world_size, "device": config["device"],
        "machine": debug.machine, "network": config["network"],
        "parameters": sum(int(t.numel()) for t in checkpoint["state_dict"].values()),
        "sampler": config["sampler"], "trained_factors": checkpoint.get("trained_factors"),
        "initial_weights": debug.initial_weights or None,
        "validation": _validation(checkpoint.get("history", {}).get("validation", [])),
    }
    source = debug.initial_weights_path
    if source and Path(source).is_file() and depth < MAX_CHAIN:
        record["initialised_from"] = weights_provenance(Path(source), depth + 1)
    return record


def weights_provenance(weights: Path, depth: int = 0) -> dict | None:
    """Provenance of any weights file: a run's checkpoint, an installed model, or shipped `<stage>.pth`."""
    folder = weights.parent
    if (folder / DEBUG_FILE).is_file():
        from isrnet.training.checkpointing import load_checkpoint
        return run_provenance(folder, load_checkpoint(weights), depth)
    for record in (folder / "provenance.json", weights.with_suffix(".json")):  # installed / shipped
        if record.is_file():
            return load_json(record)
    return None


def benchmark_record(dataset: str) -> dict:
    """The summary that `isr_benchmark -d DATASET` wrote, as JSON (method -> PSNR/SSIM, gain vs cubic)."""
    path = paths.results_folder() / dataset / "benchmark" / "benchmark_summary.csv"
    if not path.is_file():
        raise IsrnetError(f"--benchmark {dataset}: {path} does not exist; run isr_benchmark -d {dataset} first")
    table = pd.read_csv(path, index_col=0)
    columns = [c for c in ("psnr_synth", "gain_vs_cubic_dB", "ssim_synth", "psnr_all", "ssim_all") if c in table]
    return {"dataset": dataset, "written_by": f"isr_benchmark -d {dataset}",
            "metric_note": "over synthesised slices inside the reference head mask (see prediction_and_evaluation.md)",
            "methods": {method: {c: round(float(row[c]), 4) for c in columns} for method, row in table.iterrows()}}
