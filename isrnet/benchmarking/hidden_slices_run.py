"""The hidden-slice evaluation entry point: `run_hidden_slices(source, options)` (`isr_benchmark --hidden-slices`).

    from isrnet.benchmarking.hidden_slices_run import HiddenSliceOptions, run_hidden_slices
    result = run_hidden_slices("001", HiddenSliceOptions(budget_minutes=4))      # a dataset (no referenceTr needed)
    result = run_hidden_slices(Path("scans/"), HiddenSliceOptions(output=Path("hs")))  # any folder, file, DICOM
    print(result.summary)

For every scan: keep every K-th real slice, predict the removed real slices with the classic interpolants, the
pre-trained weights, ssft trained on the thinned scans only (in a private workspace under the output folder: the
removed slices are never written there), optionally patient-level adaptation on each thinned scan, and (for a
dataset) the dataset's own runs, which trained on the full scans and so have seen the removed slices (marked).
Scoring: `hidden_slices.score_output`; tables, figures and page: `hidden_slices_report`.
Written: hidden_slices.csv (per case and method), hidden_slices_summary.csv,
hidden_slices_curves.csv (PSNR per blur width), qc_hidden_<case>.png, blur_search.png and hidden_slices.md.
"""
from __future__ import annotations

import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from isrnet import paths
from isrnet.configuration import DEFAULT_STAGE_DATASETS
from isrnet.datasets import case_name, resolve_dataset, training_cases
from isrnet.acquisition.slice_profile import ProfileSource, SliceProfile, decide_slice_profile
from isrnet.errors import IsrnetError
from isrnet.evaluation.baselines import SHORT_NAMES, classic_upsample
from isrnet.evaluation.hidden_slices import (DEFAULT_CLASSIC, DEFAULT_KEEP_EVERY, HiddenSliceScore, ThinnedCase,
                                             hidden_slice_axis, ordinal, score_output, thin_case)
from isrnet.evaluation.hidden_slices_report import (add_gains, blur_search_figure, qc_figure, qc_panels, summarise,
                                                    terminal_text, write_page)
from isrnet.plans import Plans
from isrnet.experiment_planning.plans_file import load_plans, plans_path
from isrnet.imageio.geometry import factor_of, slices_first
from isrnet.imageio.reader_writer import open_frames, read_volumes, write_volume
from isrnet.imageio.volume import Volume
from isrnet.training.adaptation import AdaptationOptions
from isrnet.inference.predict_files import find_inputs
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.pretrained import shipped_weights
from isrnet.runs import DEBUG_FILE, RunRecord, runs_of
from isrnet.stages import STAGES, DatasetKind
from isrnet.training.initialisation import stage_weights
from isrnet.utilities.device import resolve_device
from isrnet.utilities.files import atomic_write_text, save_json

WORKSPACE = "workspace"  # under the output folder: raw/preprocessed/results of the thinned dataset
FOLDER_DATASET_NUMBER = 999  # the thinned dataset's number when the scans are a folder, not a dataset


@dataclass
class HiddenSliceOptions:
    keep_every: int = DEFAULT_KEEP_EVERY
    ssft: bool = True  # train ssft on the thinned scans
    budget_minutes: float | None = None  # of that ssft (default: the plan's)
    iterations: int | None = None  # a fixed count instead (tests, reproducible comparisons)
    adapt_minutes: float | None = None  # patient-level adaptation on each thinned scan
    classic: tuple[str, ...] = DEFAULT_CLASSIC  # short names of baselines.SHORT_NAMES
    full_scan_runs: bool = True  # for a dataset: also its own runs (trained on the full scans; marked)
    device: str = "cpu"
    seed: int | None = None
    output: Path | None = None  # default: $isrnet_results/DatasetXXX/hidden_slices (a dataset)
    plans_overrides: dict = field(default_factory=dict)  # dotted keys for the thinned dataset's plans
    weights: Path | None = None  # the pre-trained weights judged (default: the plans' mrft, else the shipped)
    thickness_mm: float | None = None  # scans given as files: their known slice thickness (default: decided)
    thickness_source: ProfileSource = ProfileSource.COMMAND_LINE  # where that thickness came from


@dataclass
class Scan:
    name: str
    volume: Volume
    slice_axis: int
    profile: SliceProfile  # decided on the full scan, as the pipeline decides it


@dataclass
class Method:
    label: str
    role: str  # 'classic', 'pretrained', 'ssft_thinned', 'adapted', 'full_scans'
    predict: Callable[[ThinnedCase, Scan], Volume]


@dataclass
class HiddenSliceResult:
    table: pd.DataFrame  # one row per case and method
    summary: pd.DataFrame  # per method: mean, worst and spread of the gain over the best classic, wins
    folder: Path
    page: Path
    text: str


# ---- the scans -------------------------------------------------------------------------------------------------

def _dataset_plans(dataset: str | None) -> Plans | None:
    """The dataset's plans where it was planned (the per-case profiles and the mrft dataset), else none."""
    return load_plans(dataset) if dataset and plans_path(dataset).is_file() else None


def _dataset_scans(dataset: str, plans: Plans | None) -> list[Scan]:
    info, cases = training_cases(dataset)
    if info.kind != DatasetKind.TARGET:
        raise IsrnetError(f"{dataset} is of kind '{info.kind}': the hidden-slice evaluation needs anisotropic "
                          f"scans (kind target)")
    scans = []
    for name, path in cases.items():
        with open_frames(path) as frames:  # a time series: its first frame
            volume = frames.frame(0)
        plan = plans.case(name) if plans is not None else None
        axis = plan.slice_axis if plan is not None else hidden_slice_axis(volume.spacing)
        if plan is not None and plan.slice_profile is not None:
            profile = plan.slice_profile
        else:
            stack = slices_first(volume, axis)
            profile = decide_slice_profile(stack.array, stack.spacing, info.dicom_thickness_for(name) or
                                           volume.dicom_thickness_mm, info.thickness_for(name), info.family_for(name))
        scans.append(Scan(name, volume, axis, profile))
    return scans


def _folder_scans(source: Path, thickness_mm: float | None = None,
                  thickness_source: ProfileSource = ProfileSource.COMMAND_LINE) -> list[Scan]:
    scans = []
    for path in find_inputs(source):
        volumes = read_volumes(path)
        for index, volume in enumerate(volumes):
            name = case_name(path) if len(volumes) == 1 else f"{case_name(path)}_vol{index:03d}"
            axis = hidden_slice_axis(volume.spacing)
            stack = slices_first(volume, axis)
            scans.append(Scan(name, volume, axis, decide_slice_profile(
                stack.array, stack.spacing, volume.dicom_thickness_mm, thickness_mm, declared_source=thickness_source)))
    return scans


def thinned_cases(scans: list[Scan], keep_every: int, log: Callable[[str], None]) -> list[tuple[Scan, ThinnedCase]]:
    """Every scan that has enough slices for `keep_every`; a one-line refusal when none has."""
    cases, refusals = [], []
    for scan in scans:
        try:
            cases.append((scan, thin_case(scan.name, scan.volume, scan.slice_axis, keep_every)))
        except IsrnetError as error:
            refusals.append(str(error))
    for refusal in refusals if cases else []:
        log(f"skipped: {refusal}")
    if not cases:
        raise IsrnetError(refusals[0] if len(refusals) == 1 else
                          f"no scan has enough slices for --keep-every {keep_every} ({refusals[0]})")
    return cases


# ---- ssft on the thinned scans only ----------------------------------------------------------------------------

def write_thinned_dataset(raw: Path, dataset: str, cases: list[tuple[Scan, ThinnedCase]], source: str) -> Path:
    """The thinned scans as a raw target dataset, each with the profile decided on its full scan."""
    folder = raw / dataset
    for scan, case in cases:
        write_volume(case.thinned, folder / "imagesTr" / f"{scan.name}.nii.gz")
    save_json({"name": dataset.split("_", 1)[1], "file_ending": ".nii.gz", "kind": str(DatasetKind.TARGET),
               "slice_profile": {scan.name: {"thickness_mm": scan.profile.thickness_mm, "family": scan.profile.family}
                                 for scan, _ in cases},
               "description": f"every {ordinal(cases[0][1].keep_every)} slice of {source} (hidden-slice evaluation); "
                              "the slice profiles were decided on the full scans"}, folder / "dataset.json")
    return folder


def train_on_thinned(workspace: Path, dataset: str, init: Path, options: HiddenSliceOptions) -> tuple[Path, Plans]:
    """Plan, preprocess and train ssft on the thinned dataset in `workspace` (its own three folders, nothing
    else is read); returns (the final checkpoint, the run's plans)."""
    from isrnet.experiment_planning import PlanOptions, plan_and_preprocess
    from isrnet.training import TrainingOptions, run_training
    with paths.folders_under(workspace):
        plan_and_preprocess(dataset, PlanOptions(device=resolve_device(options.device),
                                                 budget_minutes=options.budget_minutes,
                                                 overrides=options.plans_overrides), workers=1)
        run = run_training(dataset, "ssft", TrainingOptions(
            iterations=options.iterations, device=options.device, init=str(init), seed=options.seed))
        return run.final, run.plans()


# ---- the methods -----------------------------------------------------------------------------------------------

def predict_thinned(predictor: Predictor, case: ThinnedCase, thickness_mm: float) -> Volume:
    """`predictor` on the thinned scan as every method is scored (`score_output`): SAMPLES_PER_SLICE output slices per
    scan slice, the network told the thinned scan's real gap and the full scan's slice thickness `thickness_mm`."""
    settings = PredictionSettings(factor=case.samples, thickness_mm=thickness_mm, slice_axis=case.slice_axis,
                                  thickness_source=ProfileSource.FULL_SCAN,
                                  conditioning_factor=factor_of(case.thinned.spacing, case.slice_axis))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the told gap (K x the scan's factor) is the table's network_factor
        return predictor.predict(case.thinned, settings)


def _network_method(label: str, role: str, predictor: Predictor) -> Method:
    """`predictor` on each case (a training case of its run with the weights `Predictor.for_case` gives it)."""
    return Method(label, role, lambda case, scan: predict_thinned(predictor.for_case(scan.name), case,
                                                                  scan.profile.thickness_mm))


def _adapted_method(label: str, start: Predictor, options: HiddenSliceOptions, workspace: Path | None) -> Method:
    """Adaptation from `start` on each thinned case; with `workspace` (where ssft on the thinned scans ran), the
    adaptation-need record compares the case with that dataset's preprocessed cases."""
    def predict(case: ThinnedCase, scan: Scan) -> Volume:
        settings = PredictionSettings(thickness_mm=scan.profile.thickness_mm, slice_axis=case.slice_axis,
                                      thickness_source=ProfileSource.FULL_SCAN)
        adaptation = AdaptationOptions(minutes=options.adapt_minutes)  # its own default seed unless one is given
        if options.seed is not None:
            adaptation = replace(adaptation, seed=options.seed)
        with paths.folders_under(workspace) if workspace is not None else nullcontext():
            adapted, _ = start.for_case(scan.name).adapted_to(scan.name, case.thinned, settings, scan.profile,
                                                              adaptation)
        return predict_thinned(adapted, case, scan.profile.thickness_mm)
    return Method(label, role="adapted", predict=predict)


def _classic_method(name: str) -> Method:
    method = SHORT_NAMES[name]
    return Method(method, "classic", lambda case, scan: classic_upsample(case.thinned, case.samples,
                                                                          case.slice_axis, method))


def _start_weights(plans: Plans | None) -> tuple[Path, str]:
    """The weights ssft would start from: the plans' mrft dataset's (else the default's) result, else the
    shipped mrft weights."""
    number = (plans.stage_datasets if plans is not None else DEFAULT_STAGE_DATASETS)["mrft"]
    found = stage_weights("mrft", number)
    if found is None:
        raise IsrnetError("no mrft weights: neither a trained mrft run nor the shipped weights were found")
    weights = found[0]
    return weights, ("isrnet shipped mrft weights (no fine-tuning)" if weights == shipped_weights("mrft") else
                     f"isrnet mrft (Dataset{int(number):03d}, no fine-tuning)")


def _full_scan_methods(dataset: str, device: str) -> list[Method]:
    methods = []
    for run in runs_of(dataset):
        if run.finished and STAGES[run.stage].pipeline:
            predictor = Predictor.from_checkpoint(run.final, device, run.plans())
            methods.append(_network_method(f"isrnet {run.name.replace('__', ' ')} (trained on the full scans: has "
                                           f"seen the removed slices)", "full_scans", predictor))
    return methods


def _row(case: ThinnedCase, scan: Scan, method: Method, score: HiddenSliceScore, seconds: float) -> dict:
    return {"case": case.name, "method": method.label, "role": method.role, "psnr": score.psnr,
            "fwhm_spacings": score.fwhm, "fwhm_mm": score.fwhm * case.slice_spacing, "fwhm_on_edge": score.on_edge,
            "psnr_unblurred": score.psnr_unblurred, "ssim": score.ssim, "seconds": seconds,
            "removed_slices": len(case.removed), "slice_spacing_mm": case.slice_spacing,
            "thickness_mm": scan.profile.thickness_mm, "thickness_source": str(scan.profile.thickness_source),
            "user_factor": factor_of(scan.volume.spacing, scan.slice_axis),
            "network_factor": factor_of(case.thinned.spacing, case.slice_axis)}


# ---- the run ---------------------------------------------------------------------------------------------------

def _output_folder(dataset: str | None, source: Path | None, options: HiddenSliceOptions) -> Path:
    if options.output is not None:
        return Path(options.output).expanduser().resolve()
    if dataset is not None:
        return paths.results_folder() / dataset / "hidden_slices"
    return (Path.cwd() / f"hidden_slices_{source.name}").resolve()


def _check_output(folder: Path, source: Path | None) -> None:
    if source is not None:
        source = source.resolve()
        if folder == source or source in folder.parents or (source.is_dir() and folder in source.parents):
            raise IsrnetError(f"-o {folder}: the output folder must lie outside the input {source} (inputs are "
                              f"never written to)")


def _training_length(options: HiddenSliceOptions) -> str:
    if options.iterations:
        return f"{options.iterations} iterations"
    return f"{options.budget_minutes:g} min" if options.budget_minutes else "the plan's budget"


def run_hidden_slices(source: str | int | Path, options: HiddenSliceOptions | None = None,
                      log: Callable[[str], None] = print) -> HiddenSliceResult:
    """Hidden-slice evaluation of a dataset (`source` an ID or name) or of scans (`source` a Path)."""
    options = options or HiddenSliceOptions()
    started = time.time()
    unknown = [name for name in options.classic if name not in SHORT_NAMES]
    if unknown:
        raise IsrnetError(f"unknown classic method(s) {', '.join(unknown)}; use {', '.join(SHORT_NAMES)}")
    device = resolve_device(options.device)
    dataset = None if isinstance(source, Path) else resolve_dataset(source)
    folder_source = source if isinstance(source, Path) else None
    plans = _dataset_plans(dataset)
    scans = (_dataset_scans(dataset, plans) if dataset else
             _folder_scans(folder_source, options.thickness_mm, options.thickness_source))
    cases = thinned_cases(scans, options.keep_every, log)
    output = _output_folder(dataset, folder_source, options)
    _check_output(output, folder_source)
    output.mkdir(parents=True, exist_ok=True)

    start_path, start_label = ((options.weights, f"isrnet {options.weights.name} (no fine-tuning)")
                               if options.weights is not None else _start_weights(plans))
    start = Predictor.from_checkpoint(start_path, device)
    methods = [_classic_method(name) for name in SHORT_NAMES if name in options.classic]
    methods.append(_network_method(start_label, "pretrained", start))
    adapt_from = start
    if options.ssft:
        workspace = output / WORKSPACE
        shutil.rmtree(workspace, ignore_errors=True)
        number = dataset.split("_")[0][len("Dataset"):] if dataset else f"{FOLDER_DATASET_NUMBER:03d}"
        name = f"Dataset{number}_{(dataset.split('_', 1)[1] if dataset else 'Scans')}KeepEvery{options.keep_every}"
        described = dataset or str(folder_source)
        write_thinned_dataset(workspace / "raw", name, cases, described)
        log(f"ssft on the thinned scans only ({len(cases)} case(s), {_training_length(options)}) in {workspace}")
        checkpoint, plans = train_on_thinned(workspace, name, start_path, options)
        adapt_from = Predictor.from_checkpoint(checkpoint, device, plans)
        methods.append(_network_method("isrnet ssft on the thinned scans", "ssft_thinned", adapt_from))
        record = RunRecord.load(checkpoint.parent / DEBUG_FILE)
        if record.kept_start or record.kept_halfway or record.cases_keeping_start:  # what the guard turned down too
            methods.append(_network_method("isrnet ssft on the thinned scans, fine-tuned (turned down by the guard)",
                                           "ssft_unguarded", Predictor.from_checkpoint(
                                               checkpoint.parent / "checkpoint_latest.pth", device, plans)))
    if options.adapt_minutes:
        methods.append(_adapted_method(f"isrnet adapted per case ({options.adapt_minutes:g} min, from "
                                       f"{'ssft on the thinned scans' if options.ssft else 'the pre-trained weights'})",
                                       adapt_from, options, workspace if options.ssft else None))
    if dataset and options.full_scan_runs:
        methods += _full_scan_methods(dataset, device)

    rows, curves, figures = [], [], []
    for scan, case in cases:
        estimates = {}
        for method in methods:
            began = time.perf_counter()
            score = score_output(case, method.predict(case, scan))
            rows.append(_row(case, scan, method, score, time.perf_counter() - began))
            curves += [{"case": case.name, "method": method.label, "fwhm_spacings": width, "psnr": value}
                       for width, value in score.curve.items()]
            estimates[method.label] = (method.role, score.psnr, score.estimate)
            log(f"{case.name}: {method.label}: {score.psnr:.2f} dB (best FWHM {score.fwhm:g} x spacing"
                f"{', on the edge' if score.on_edge else ''})")
        figures.append(output / f"qc_hidden_{case.name}.png")
        qc_figure(case, qc_panels(estimates), figures[-1],
                  f"{case.name}: every {ordinal(options.keep_every)} slice kept, a removed slice predicted")

    table = add_gains(pd.DataFrame(rows))
    summary = summarise(table)
    atomic_write_text(table.to_csv(index=False, float_format="%.4f"), output / "hidden_slices.csv")
    atomic_write_text(summary.to_csv(float_format="%.4f"), output / "hidden_slices_summary.csv")
    curve_table = pd.DataFrame(curves)
    atomic_write_text(curve_table.to_csv(index=False, float_format="%.4f"), output / "hidden_slices_curves.csv")
    blur_search_figure(curve_table, output / "blur_search.png")
    text = terminal_text(table, summary, options.keep_every)
    trained = f"trained, {_training_length(options)}" if options.ssft else "not trained"
    training = (f"ssft on the thinned scans: {trained}"
                f"; adaptation: {f'{options.adapt_minutes:g} min per case' if options.adapt_minutes else 'off'}; "
                f"device {device}.")
    page = write_page(output, dataset or str(folder_source), table, summary, figures, text, options.keep_every,
                      training)
    text += f"\nwritten to {output} (open {page.name}) in {time.time() - started:.0f} s"
    return HiddenSliceResult(table, summary, output, page, text)


