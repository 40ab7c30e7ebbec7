"""`isr_bids` as Python: `run_participant(bids_dir, output_dir, options)` and `run_group(output_dir)`.

    from isrnet.bids import BidsOptions, Selection, run_participant, run_group
    outcomes = run_participant("study/", "study/derivatives/isrnet", BidsOptions(Selection(suffixes=("T2w",))))
    summary = run_group("study/derivatives/isrnet")

Participant level: every matching scan is super-resolved along its slice axis with the shipped weights, a given
model (-d / -m) or (`train`) ssft trained first on the selected scans in an isrnet dataset under the work folder;
the sidecar's SliceThickness is the thickness when it is plausible. A scan whose derivative exists is skipped
(unless `overwrite`); a scan that fails is reported and the others are still written. Group level: one table and
one figure over every derivative written.
"""
from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from isrnet import paths
from isrnet.acquisition.slice_profile import ProfileSource
from isrnet.bids.derivatives import (derivative_sidecar, output_relative, sidecar_thickness,
                                     write_dataset_description)
from isrnet.bids.layout import BidsScan, Selection, find_scans
from isrnet.errors import IsrnetError
from isrnet.inference.model_resolution import Model, from_run, resolve_model
from isrnet.inference.outputs import OutputFormat, check_not_an_input, sidecar_of
from isrnet.inference.predict_files import predict_file
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.stages import DatasetKind
from isrnet.training.adaptation import AdaptationOptions
from isrnet.utilities.device import resolve_device
from isrnet.utilities.files import atomic_write_text, load_json, save_json

TRAINING_DATASET = "Dataset001_BidsScans"  # in the work folder's own raw/preprocessed/results
SUMMARY_COLUMNS = ("scan", "subject", "session", "datatype", "suffix", "factor", "thickness_mm", "thickness_source",
                   "family", "input_spacing_mm", "output_spacing_mm", "seconds", "model", "hidden_slice_gain_dB")


@dataclass
class BidsOptions:
    selection: Selection = field(default_factory=Selection)
    dataset: str | None = None  # -d: this isrnet dataset's trained model
    stage: str | None = None  # with dataset: which run
    model: Path | None = None  # -m: a run folder or checkpoint
    train: bool = False  # ssft on the selected scans first (in the work folder)
    train_minutes: float | None = None  # that ssft's budget (default: the plan's)
    train_iterations: int | None = None  # a fixed count instead (reproducible; tests)
    adaptation: AdaptationOptions = field(default_factory=AdaptationOptions)
    evaluate: bool = False  # the hidden-slice score of every scan with the model used
    overwrite: bool = False
    device: str = "cpu"
    work_dir: Path | None = None  # default OUTPUT_DIR/work


@dataclass
class ScanOutcome:
    scan: str  # relative to the BIDS root
    status: str  # 'written', 'skipped' or 'failed'
    output: str | None = None  # relative to the derivatives root
    reason: str = ""


@dataclass
class GroupSummary:
    table: pd.DataFrame
    tsv: Path
    figure: Path | None


# ---- the model -------------------------------------------------------------------------------------------------

def _training_dataset(scans: list[BidsScan], raw: Path) -> None:
    """The selected scans as an isrnet target dataset (copies), each sidecar thickness declared per case."""
    folder = raw / TRAINING_DATASET
    profiles = {}
    for scan in scans:
        target = folder / "imagesTr" / f"{scan.stem}.nii.gz"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            if scan.path.name.endswith(".nii.gz"):
                shutil.copyfile(scan.path, target)
            else:
                import nibabel as nib
                nib.save(nib.load(str(scan.path)), str(target))
        thickness, _ = sidecar_thickness(scan, _slice_spacing(scan))
        if thickness is not None:
            profiles[scan.stem] = {"thickness_mm": thickness}
    save_json({"name": TRAINING_DATASET.split("_", 1)[1], "file_ending": ".nii.gz", "kind": str(DatasetKind.TARGET),
               "description": "scans of a BIDS dataset selected by isr_bids --train; slice_profile: the sidecars' "
                              "SliceThickness", "slice_profile": profiles}, folder / "dataset.json")


def train_on_scans(scans: list[BidsScan], work: Path, options: BidsOptions, log: Callable[[str], None]) -> Model:
    """Dataset-level ssft on `scans` in `work` (its own raw/preprocessed/results); a finished run is reused
    unless `options.overwrite`."""
    from isrnet.experiment_planning import PlanOptions, plan_and_preprocess
    from isrnet.runs import Run
    from isrnet.training import TrainingOptions, run_training
    with paths.folders_under(work):
        run = Run.parse(TRAINING_DATASET, "ssft", pipeline_only=True)
        if run.finished and not options.overwrite:
            log(f"isr_bids: reusing the ssft run in {run.folder} (--overwrite trains again)")
            return from_run(run)
        if options.overwrite:
            for folder in (paths.raw_folder(), paths.preprocessed_folder(), paths.results_folder()):
                shutil.rmtree(folder / TRAINING_DATASET, ignore_errors=True)
        _training_dataset(scans, paths.raw_folder())
        log(f"isr_bids: ssft on {len(scans)} scan(s) in {work} first")
        device = resolve_device(options.device)
        plan_and_preprocess(TRAINING_DATASET, PlanOptions(device=device, budget_minutes=options.train_minutes),
                            workers=1)
        run = run_training(TRAINING_DATASET, "ssft", TrainingOptions(
            iterations=options.train_iterations, budget_minutes=options.train_minutes, device=device))
        return from_run(run)


def _model(scans: list[BidsScan], work: Path, options: BidsOptions, log: Callable[[str], None]) -> Model:
    if options.train and (options.dataset is not None or options.model is not None):
        raise IsrnetError("--train makes its own model: it excludes -d and -m")
    if options.train:
        return train_on_scans(scans, work, options, log)
    return resolve_model(options.dataset, options.stage, options.model)


# ---- one scan --------------------------------------------------------------------------------------------------

def _slice_spacing(scan: BidsScan) -> float:
    import nibabel as nib
    try:
        zooms = nib.load(str(scan.path)).header.get_zooms()[:3]
    except Exception as error:  # nibabel's errors for unreadable files vary
        raise IsrnetError(f"cannot read {scan.path.name}: {error}") from None
    return float(max(zooms))


def _hidden_slice_gain(scan: BidsScan, model: Model, thickness: float | None, folder: Path, device: str) -> float:
    """The model's hidden-slice gain over the best classic interpolant on this scan (every 2nd slice hidden)."""
    from isrnet.benchmarking.hidden_slices_run import HiddenSliceOptions, run_hidden_slices
    result = run_hidden_slices(scan.path, HiddenSliceOptions(ssft=False, output=folder, device=device,
                                                             weights=model.checkpoint, thickness_mm=thickness,
                                                             thickness_source=ProfileSource.BIDS_SIDECAR),
                               log=lambda message: None)
    networks = result.table[result.table.role == "pretrained"]
    return float(networks.gain_vs_best_classic_dB.iloc[0])


def _predict_scan(predictor: Predictor, model: Model, scan: BidsScan, output_dir: Path, options: BidsOptions) -> Path:
    """The scan's derivative and its sidecar (the image renamed into place last: it marks the scan done)."""
    slice_spacing = _slice_spacing(scan)
    thickness, note = sidecar_thickness(scan, slice_spacing)
    settings = PredictionSettings(thickness_mm=thickness, thickness_source=ProfileSource.BIDS_SIDECAR)
    target = output_dir / output_relative(scan)
    staging = output_dir / "work" / "staging" / scan.stem
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = predict_file(predictor, scan.path, staging, settings, None, None, OutputFormat(),
                               options.adaptation)
        record = load_json(sidecar_of(written))
        record["input"] = f"bids:raw:{scan.relative.as_posix()}"
        record["output"] = target.name
        if note:
            record["notes"] = [note]
        if options.evaluate:
            evaluation = output_dir / "evaluation" / scan.stem
            record["hidden_slice_gain_dB"] = round(_hidden_slice_gain(scan, model, thickness, evaluation,
                                                                      options.device), 4)
            record["hidden_slice_page"] = str((evaluation / "hidden_slices.md").relative_to(output_dir))
        target.parent.mkdir(parents=True, exist_ok=True)
        for extension, companion in scan.companions.items():  # a dwi derivative's gradient table
            shutil.copyfile(companion, output_dir / output_relative(scan, extension))
        save_json(derivative_sidecar(scan, record), sidecar_of(target))
        written.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for empty in (staging.parent, staging.parent.parent):  # leave no empty work folders behind
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    return target


def _done(scan: BidsScan, output_dir: Path) -> bool:
    target = output_dir / output_relative(scan)
    return target.is_file() and sidecar_of(target).is_file()


def run_participant(bids_dir: str | Path, output_dir: str | Path, options: BidsOptions | None = None,
                    log: Callable[[str], None] = print) -> list[ScanOutcome]:
    """Super-resolve every selected scan of `bids_dir` into the derivatives dataset `output_dir`."""
    options = options or BidsOptions()
    bids_dir, output_dir = Path(bids_dir), Path(output_dir)
    if output_dir.resolve() == bids_dir.resolve():
        raise IsrnetError(f"OUTPUT_DIR {output_dir} is the BIDS dataset itself: write derivatives elsewhere "
                          f"(e.g. {bids_dir / 'derivatives' / 'isrnet'})")
    scans = find_scans(bids_dir, options.selection)
    check_not_an_input(output_dir, [scan.path for scan in scans], replaced=False, what="OUTPUT_DIR")
    output_dir.mkdir(parents=True, exist_ok=True)
    source_name = load_json(bids_dir / "dataset_description.json").get("Name")
    write_dataset_description(output_dir, bids_dir, source_name)
    outcomes = [ScanOutcome(str(s.relative), "skipped", str(output_relative(s)), "already written (--overwrite "
                            "redoes it)") for s in scans if not options.overwrite and _done(s, output_dir)]
    todo = [s for s in scans if options.overwrite or not _done(s, output_dir)]
    log(f"isr_bids: {len(scans)} scan(s) match, {len(todo)} to do, {len(outcomes)} already written")
    if todo:
        model = _model(scans, options.work_dir or output_dir / "work", options, log)
        predictor = Predictor.from_model(model, resolve_device(options.device))
        log(f"isr_bids: model {model.description}")
        for number, scan in enumerate(todo, 1):
            began = time.time()
            try:
                target = _predict_scan(predictor, model, scan, output_dir, options)
                outcomes.append(ScanOutcome(str(scan.relative), "written", str(target.relative_to(output_dir))))
                log(f"[{number}/{len(todo)}] {scan.relative}: written in {time.time() - began:.0f} s")
            except IsrnetError as error:
                outcomes.append(ScanOutcome(str(scan.relative), "failed", None, str(error)))
                log(f"[{number}/{len(todo)}] {scan.relative}: failed: {error}")
            except Exception as error:  # one broken scan must not stop the study; the log keeps the trace
                outcomes.append(ScanOutcome(str(scan.relative), "failed", None, f"{type(error).__name__}: {error}"))
                log(f"[{number}/{len(todo)}] {scan.relative}: failed: {type(error).__name__}: {error}")
                _append_trace(output_dir, scan, traceback.format_exc())
    _write_log(output_dir, outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    log(f"isr_bids: {sum(o.status == 'written' for o in outcomes)} written, "
        f"{sum(o.status == 'skipped' for o in outcomes)} skipped, {len(failed)} failed"
        + "".join(f"\n  failed: {o.scan}: {o.reason}" for o in failed))
    return outcomes


def _write_log(output_dir: Path, outcomes: list[ScanOutcome]) -> None:
    table = pd.DataFrame([vars(o) for o in outcomes], columns=["scan", "status", "output", "reason"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    atomic_write_text(table.to_csv(sep="\t", index=False), output_dir / "logs" / f"participant_{stamp}.tsv")


def _append_trace(output_dir: Path, scan: BidsScan, trace: str) -> None:
    folder = output_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "tracebacks.txt", "a", encoding="utf-8") as handle:
        handle.write(f"--- {scan.relative} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n{trace}\n")


# ---- group level -----------------------------------------------------------------------------------------------

def _row(path: Path, output_dir: Path) -> dict:
    sidecar = load_json(path)
    record = sidecar.get("isrnet", {})
    profile = record.get("slice_profile", {})
    entities = dict(part.split("-", 1) for part in path.name.split("_")[:-1] if "-" in part)
    return {"scan": str(path.relative_to(output_dir).with_suffix("")), "subject": entities.get("sub"),
            "session": entities.get("ses"), "datatype": path.parent.name, "suffix": path.name.split("_")[-1][:-5],
            "factor": record.get("factor"), "thickness_mm": profile.get("thickness_mm"),
            "thickness_source": profile.get("thickness_source"), "family": profile.get("family"),
            "input_spacing_mm": "x".join(f"{s:g}" for s in record.get("input_spacing", [])),
            "output_spacing_mm": "x".join(f"{s:g}" for s in record.get("output_spacing", [])),
            "seconds": record.get("seconds"), "model": record.get("model"),
            "hidden_slice_gain_dB": record.get("hidden_slice_gain_dB")}


def _figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("factor", "upsampling factor"), ("thickness_mm", "slice thickness used (mm)"), ("seconds", "seconds")]
    if table.hidden_slice_gain_dB.notna().any():
        panels.append(("hidden_slice_gain_dB", "hidden-slice gain over\nthe best classic (dB)"))
    labels = [name.split("/")[-1] for name in table.scan]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 2, 0.35 * len(table) + 1.5),
                                sharey=True, squeeze=False)
    sources = sorted(table.thickness_source.dropna().unique())
    colours = {source: f"C{i}" for i, source in enumerate(sources)}
    for axis, (column, title) in zip(axes[0], panels):
        values = pd.to_numeric(table[column], errors="coerce").fillna(0.0)
        colour = [colours.get(s, "grey") for s in table.thickness_source] if column == "thickness_mm" else "C7"
        axis.barh(range(len(table)), values, color=colour)
        axis.set_title(title, fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(table)), labels, fontsize=7)
    axes[0][0].invert_yaxis()
    if sources:  # below the panels: inside one it would hide bars
        figure.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in sources], labels=sources,
                      fontsize=7, title="slice thickness from", title_fontsize=7, loc="lower center",
                      ncol=len(sources))
    figure.suptitle(f"isrnet over the study: {len(table)} scan(s)", fontsize=10)
    figure.tight_layout(rect=(0, 0.1 if sources else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(".partial_" + path.name)
    figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    temporary.replace(path)


def run_group(output_dir: str | Path, log: Callable[[str], None] = print) -> GroupSummary:
    """One table (group/isr_bids_summary.tsv) and one figure over every derivative in `output_dir`."""
    output_dir = Path(output_dir)
    if not (output_dir / "dataset_description.json").is_file():
        raise IsrnetError(f"OUTPUT_DIR {output_dir} holds no isr_bids derivatives: run the participant level first")
    sidecars = sorted(p for p in output_dir.glob("sub-*/**/*_desc-isr_*.json"))
    if not sidecars:
        raise IsrnetError(f"OUTPUT_DIR {output_dir} holds no derivatives yet: run the participant level first")
    table = pd.DataFrame([_row(path, output_dir) for path in sidecars], columns=list(SUMMARY_COLUMNS))
    tsv = output_dir / "group" / "isr_bids_summary.tsv"
    atomic_write_text(table.to_csv(sep="\t", index=False, na_rep="n/a"), tsv)
    figure = output_dir / "group" / "isr_bids_summary.png"
    _figure(table, figure)
    log(f"isr_bids group: {len(table)} scan(s) -> {tsv} and {figure.name}")
    return GroupSummary(table, tsv, figure)
