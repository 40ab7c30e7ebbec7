"""isr_benchmark: classic interpolation vs isrnet after each stage vs a supervised upper bound.

For each case with a reference: the low-resolution input (imagesTr, or simulated from the reference with
--factor), every method's output on isrnet's output grid, PSNR/SSIM against the reference (synthesised
slices and all slices), seconds per volume and output voxels per second. The supervised upper bound is the
same network trained on pairs cut from the references with the ssft budget — the one place where
training reads referenceTr/, and labelled as such.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from isrnet.datasets import list_cases, load_dataset_info, raw_dataset_folder, verify_dataset_integrity
from isrnet.acquisition import simulate_thick_slices
from isrnet.acquisition.slice_profile import ProfileSource, SliceProfile, profile_of
from isrnet.errors import IsrnetError
from isrnet.plans import CasePlan, Plans
from isrnet.evaluation.baselines import INTERPOLATORS, classic_upsample
from isrnet.evaluation.metrics import compare
from isrnet.imageio import read_volume
from isrnet.imageio.geometry import factor_of, input_slice_positions, slice_axis_of
from isrnet.imageio.volume import Volume
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.pretrained import shipped_weights
from isrnet.runs import Run, finished_stage_run, runs_of
from isrnet.stages import STAGES
from isrnet.training.initialisation import stage_weights


@dataclass
class Case:
    name: str
    low: Volume
    reference: Volume
    slice_axis: int
    factor: float
    slice_profile: SliceProfile  # the plan's (or the simulated one) that every isrnet method is told


def load_cases(dataset: str, plans: Plans, factor: float | None) -> list[Case]:
    """Every case with a reference: its own thick-slice image (as planned), or one simulated at `factor`."""
    verify_dataset_integrity(dataset)
    folder = raw_dataset_folder(dataset)
    references = list_cases(folder / "referenceTr")
    if not references:
        raise IsrnetError(f"{folder} has no referenceTr/: the benchmark needs high-resolution references "
                          f"(isr_evaluate compares predictions you already have)")
    images = list_cases(folder / "imagesTr")
    cases = []
    for name, reference_path in references.items():
        reference = read_volume(reference_path)
        plan = plans.cases.get(name) or CasePlan()
        if factor is None and not plan.skip:
            low = read_volume(images[name])
            axis = plan.slice_axis if plan.slice_axis is not None else slice_axis_of(low.spacing)
            cases.append(Case(name, low, reference, axis, plan.factor or factor_of(low.spacing, axis),
                              profile_of(plan.slice_profile, low.spacing[axis])))
        elif factor is not None:
            cases.append(simulated_case(name, reference, plan.slice_axis or 0, factor))
    if not cases:
        raise IsrnetError(f"no case of {dataset} has both an image and a reference (or use --factor to simulate)")
    return cases


SIMULATED_ACQUISITION_KEY = "simulated_acquisition"  # dataset.json: the truth of simulated cases, read only here


def profile_table(dataset: str, cases: list[Case]) -> pd.DataFrame:
    """Per case: the slice profile the pipeline used (and its source) and, where dataset.json records the true
    simulated acquisition under `simulated_acquisition`, the truth and the thickness error."""
    truth = load_dataset_info(raw_dataset_folder(dataset)).extra.get(SIMULATED_ACQUISITION_KEY, {})
    rows = []
    for case in cases:
        used = case.slice_profile
        known = truth.get(case.name, {}) if isinstance(truth, dict) else {}
        true_thickness = known.get("thickness_mm", known.get("slice_thickness_mm"))  # the latter: older datasets
        true_family = known.get("family", known.get("slice_profile"))
        rows.append({"case": case.name, "thickness_mm": used.thickness_mm, "thickness_source": str(used.thickness_source),
                     "family": used.family, "family_source": str(used.family_source),
                     "true_thickness_mm": true_thickness, "true_family": true_family,
                     "thickness_error_pct": (100.0 * (used.thickness_mm / true_thickness - 1.0)
                                             if true_thickness else None)})
    return pd.DataFrame(rows)


def profile_text(table: pd.DataFrame) -> str:
    """One line per case: the profile used, and the truth where it is known."""
    lines = []
    for row in table.itertuples():
        line = (f"  {row.case}: {row.family} {row.thickness_mm:.2f} mm ({row.thickness_source}; family: "
                f"{row.family_source or 'default'})")
        if row.true_thickness_mm:
            line += (f"; truth {row.true_family} {row.true_thickness_mm:g} mm -> thickness error "
                     f"{row.thickness_error_pct:+.0f} %")
        lines.append(line)
    return "slice profile used:\n" + "\n".join(lines)


def simulated_case(name: str, reference: Volume, axis: int, factor: float) -> Case:
    """Thick slices (Gaussian, thickness = spacing) simulated from the reference along `axis`."""
    step = float(factor)
    array, positions = simulate_thick_slices(reference.array, axis, step, step, "gaussian")
    spacing = list(reference.spacing)
    spacing[axis] *= step
    low = Volume(array, tuple(spacing), reference.origin.copy(), reference.direction.copy())
    simulated = SliceProfile(spacing[axis], "gaussian", ProfileSource.SIMULATED, ProfileSource.SIMULATED, 1.0)
    return Case(name, low, reference, axis, factor, simulated)


@dataclass(frozen=True)
class BenchmarkModel:
    label: str
    checkpoint: Path
    role: str  # 'video' / 'mrft' (pre-trained, no fine-tuning), 'run' (a run of this dataset), 'upper_bound'
    run: Run | None = None


def _guard_note(run: Run) -> str:
    """' (guard kept ...)' where the never-worse guard did not keep the run's own weights, else ''."""
    record = run.record()  # None for an installed model (no debug.json)
    if record is not None and record.kept_start:
        return " (guard kept its starting weights)"
    if record is not None and record.kept_halfway:
        return " (guard kept the weights halfway from its start)"
    return ""


def trained_models(dataset: str, plans: Plans) -> list[BenchmarkModel]:
    """Every model to compare: the pre-training results (or shipped weights) and every run of this dataset."""
    models = []
    video_dataset, mrft_dataset = plans.stage_datasets["video"], plans.stage_datasets["mrft"]
    video = finished_stage_run(video_dataset, "video")
    if video:
        models.append(BenchmarkModel(f"isrnet video (Dataset{video_dataset:03d}, no fine-tuning)", video.final,
                                     "video", video))
    mrft = stage_weights("mrft", mrft_dataset)
    if mrft:
        shipped = mrft[0] == shipped_weights("mrft")
        label = "isrnet shipped mrft weights (no fine-tuning)" if shipped else \
            f"isrnet mrft (Dataset{mrft_dataset:03d}, no fine-tuning)"
        models.append(BenchmarkModel(label, mrft[0], "mrft", None if shipped else finished_stage_run(mrft_dataset,
                                                                                                     "mrft")))
    for run in runs_of(dataset):
        if run.finished:
            bound = not STAGES[run.stage].pipeline
            label = "supervised upper bound (trained on referenceTr)" if bound else f"isrnet {run.name.replace('__', ' ')}"
            label += _guard_note(run)
            models.append(BenchmarkModel(label, run.final, "upper_bound" if bound else "run", run))
    return models


def run_method(case: Case, method: str, upsample: Callable[[Case], Volume]) -> tuple[dict, Volume]:
    start = time.perf_counter()
    output = upsample(case)
    seconds = time.perf_counter() - start
    metrics = compare(output, case.reference, case.slice_axis, input_slice_positions(case.low, case.slice_axis))
    return {"case": case.name, "method": method, "psnr_synth": metrics.get("psnr_synth", np.nan),
            "ssim_synth": metrics.get("ssim_synth", np.nan), "psnr_all": metrics["psnr_all"],
            "ssim_all": metrics["ssim_all"], "seconds": seconds, "voxels_per_second": output.array.size / seconds}, output


def benchmark(cases: list[Case], models: list[BenchmarkModel], device: str = "cpu", log: Callable[[str], None] = print,
              classic: tuple[str, ...] = tuple(INTERPOLATORS)) -> tuple[pd.DataFrame, dict[str, dict[str, Volume]]]:
    """Every classic method in `classic` and every model on every case: (per-case table, outputs)."""
    rows, outputs = [], {}
    for case in cases:
        outputs[case.name] = {}
        for method in classic:
            row, out = run_method(case, method, lambda c, m=method: classic_upsample(c.low, c.factor, c.slice_axis, m))
            rows.append(row)
            outputs[case.name][method] = out
            log(f"{case.name}: {method}: PSNR {row['psnr_synth']:.2f} dB")
        for model in models:
            predictor = Predictor.from_checkpoint(model.checkpoint, device, model.run.plans() if model.run else None)
            settings = PredictionSettings(case.factor, None, case.slice_profile.thickness_mm, slice_axis=case.slice_axis,
                                          thickness_source=ProfileSource.PLANS)
            row, out = run_method(case, model.label, lambda c: predictor.predict(c.low, settings))
            rows.append(row)
            outputs[case.name][model.label] = out
            log(f"{case.name}: {model.label}: PSNR {row['psnr_synth']:.2f} dB")
    return pd.DataFrame(rows), outputs


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over cases per method, with the gain over cubic B-spline."""
    means = table.drop(columns=["case"]).groupby("method", sort=False).mean()
    means.insert(1, "gain_vs_cubic_dB", means["psnr_synth"] - means.loc["cubic B-spline", "psnr_synth"])
    return means


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (for documentation pages)."""
    columns = ["psnr_synth", "gain_vs_cubic_dB", "ssim_synth", "psnr_all", "ssim_all", "seconds", "voxels_per_second"]
    header = "| method | PSNR synth (dB) | gain vs cubic (dB) | SSIM synth | PSNR all (dB) | SSIM all | s/volume | output voxels/s |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for method, row in summary[columns].iterrows():
        lines.append(f"| {method} | {row.psnr_synth:.2f} | {row.gain_vs_cubic_dB:+.2f} | {row.ssim_synth:.4f} | "
                     f"{row.psnr_all:.2f} | {row.ssim_all:.4f} | {row.seconds:.2f} | {row.voxels_per_second:,.0f} |")
    return "\n".join(lines) + "\n"


def terminal_table(summary: pd.DataFrame, cases: int) -> str:
    """The summary as aligned text for the terminal: the columns people compare first."""
    table = pd.DataFrame({"PSNR synth (dB)": summary["psnr_synth"].map("{:.2f}".format),
                          "vs cubic (dB)": summary["gain_vs_cubic_dB"].map("{:+.2f}".format),
                          "SSIM synth": summary["ssim_synth"].map("{:.4f}".format),
                          "s/volume": summary["seconds"].map("{:.1f}".format)}, index=summary.index)
    table.index.name = None
    return (f"mean over {cases} case(s); PSNR/SSIM over the synthesised slices inside the reference's "
            f"foreground mask\n" + table.to_string())
