"""ssft on a fixed set of acquisitions unlike the demo: is fine-tuning ever worse than its start?

Material: each --sources high-resolution volume at 1 mm (default: deepmriprep's 0.5 mm template at 1 mm, the HR
brain mrft never trained on; sources.py names the training sources). Each case is a simulated
thick-slice acquisition (stored as NIfTI, thickness not stated: planning estimates it) with its 1 mm reference:
  gap        Gaussian 2 mm every 4 mm               rect       rect 4 mm every 4 mm
  noise      Gaussian 4 mm every 4 mm, Rician SNR 25 contrast   T2-like (inverted T1 in the brain), 4 mm every 4 mm
  x2.5       Gaussian 2.5 mm every 2.5 mm           x6         Gaussian 6 mm every 6 mm
  oblique    Gaussian 4 mm every 4 mm, anatomy tilted 20 degrees to the slices, oblique header
For each case, seed and budget: PSNR against the reference (isr_benchmark's metric) of the starting (shipped
mrft) weights and of ssft, whether the guard kept the start, and ssft - start; the fine-tuned weights' own gain
(tuned_gain: scored from checkpoint_latest.pth when the guard kept the start or the halfway weights) and the two
signals the guard can decide on (validation_gain: held-out simulated pairs; witness_gain: hidden real slices of the
case), from which the summary counts each rule's false keeps and false rejects, offline on those signals and, on
its 'as run' line, as the cells' own guard decided (the halfway weights included).
Arms: 'estimated' (the default pipeline); 'old', the old assumption (Gaussian, FWHM = spacing); 'told', the
true profile written into the plans (what ssft gains when the thickness is not the question). The start is told
the same thickness as ssft in each arm.
Usage: python benchmarks/ssft_mismatch_set.py [--cases gap rect ...] [--seeds 1 2] [--budgets 2 4 8]
       [--arms estimated old told] [--sources deepmriprep mni152 ...] [--out DIR]
       (7 cases x 2 seeds x 2+4+8 min: about 4 hours per source on 2 CPU cores; one seed at 4 min: about 35 min)
Everything is written under --out/<source> (default ./benchmark_output/ssft_mismatch); nothing touches your isrnet
folders. ssft_mismatch.csv in --out accumulates cells across invocations (a re-run cell replaces its row), so the grid
can be run in parts; the summary covers every cell in it, per source and over all.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from isrnet import paths  # noqa: E402
from isrnet.acquisition import simulate_thick_slices  # noqa: E402
from isrnet.imageio import Volume  # noqa: E402
from sources import (FALSE_KEEP_DB, WORTH_DB, add_sources_argument, guard_outcome, high_resolution,  # noqa: E402
                     spread_summary)

TILT_DEGREES = 20.0


@dataclass(frozen=True)
class Acquisition:
    family: str
    spacing: float  # mm between slices (the fine grid is 1 mm)
    thickness: float  # FWHM in mm
    snr: float | None = None
    contrast: str = "t1"  # 't1' or 't2like'
    oblique: bool = False


CASES = {
    "gap": Acquisition("gaussian", 4.0, 2.0),
    "rect": Acquisition("rect", 4.0, 4.0),
    "noise": Acquisition("gaussian", 4.0, 4.0, snr=25.0),
    "contrast": Acquisition("gaussian", 4.0, 4.0, contrast="t2like"),
    "x2.5": Acquisition("gaussian", 2.5, 2.5),
    "x6": Acquisition("gaussian", 6.0, 6.0),
    "oblique": Acquisition("gaussian", 4.0, 4.0, oblique=True),
}


def oblique_direction(degrees: float = TILT_DEGREES) -> np.ndarray:
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])


def tilted(fine: np.ndarray) -> np.ndarray:
    """The anatomy turned TILT_DEGREES about the second axis (cubic), so that axis-0 slices cut it obliquely."""
    return ndimage.rotate(fine, TILT_DEGREES, axes=(0, 2), reshape=False, order=3, mode="constant").clip(0)


def rician_noise(image: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise; sigma = the mean of the brighter voxels / snr."""
    sigma = image[image > 0.1 * image.max()].mean() / snr
    return np.hypot(image + rng.normal(0, sigma, image.shape), rng.normal(0, sigma, image.shape)).astype(np.float32)


def make_case(fine: np.ndarray, acquisition: Acquisition, seed: int) -> tuple[Volume, Volume]:
    """(thick-slice image, 1 mm reference) for one acquisition; both share the (possibly oblique) geometry."""
    fine = fine.copy()
    if acquisition.contrast == "t2like":  # CSF bright, white matter dark: inverted inside the brain
        brain = ndimage.binary_fill_holes(fine > 0.05 * fine.max())
        fine = np.where(brain, fine.max() * 1.1 - fine, 0.0).astype(np.float32)
    if acquisition.oblique:
        fine = tilted(fine)
    step = acquisition.spacing
    keep = int((fine.shape[0] - 1) // step * step) + 1
    fine = fine[:keep]
    low = simulate_thick_slices(fine, 0, step, acquisition.thickness, acquisition.family)[0]
    if acquisition.snr:
        low = rician_noise(low, acquisition.snr, np.random.default_rng(seed))
    direction = oblique_direction() if acquisition.oblique else np.eye(3)
    origin = np.array([-80.0, -100.0, -60.0])
    return (Volume(low.astype(np.float32), (step, 1.0, 1.0), origin, direction),
            Volume(fine.astype(np.float32), (1.0, 1.0, 1.0), origin, direction))


def write_case(folder: Path, name: str, low: Volume, reference: Volume, acquisition: Acquisition) -> None:
    from dataset_conversion.staging import write_dataset_json
    from isrnet.benchmarking.benchmark import SIMULATED_ACQUISITION_KEY
    from isrnet.imageio import write_volume
    write_volume(low, folder / "imagesTr" / "brain.nii.gz")
    write_volume(reference, folder / "referenceTr" / "brain.nii.gz")
    write_dataset_json(folder, name, "target", ".nii.gz", 1, f"benchmark case {acquisition}", "MIT",
                       extra={SIMULATED_ACQUISITION_KEY: {"brain": {"thickness_mm": acquisition.thickness,
                                                                    "family": acquisition.family,
                                                                    "slice_spacing_mm": acquisition.spacing}}})


def run_cell(out: Path, number: int, name: str, acquisition: Acquisition, arm: str, seed: int, budget: float,
             fine: np.ndarray, source: str = "deepmriprep", variant: str = "", settings: dict | None = None) -> dict:
    """Plan, fine-tune and benchmark one (case, arm, seed, budget)."""
    from isrnet.benchmarking import BenchmarkOptions, run_benchmark
    from isrnet.experiment_planning import PlanOptions, plan_and_preprocess
    from isrnet.training import TrainingOptions, run_training
    number = 850 + number if arm == "told" else 800 + 2 * number + (arm == "old")
    dataset = f"Dataset{number:03d}_{name.replace('.', '')}{arm.title()}"
    folder = out / "raw" / dataset
    if not (folder / "dataset.json").is_file():
        write_case(folder, dataset.split("_", 1)[1], *make_case(fine, acquisition, seed=0), acquisition)
    overrides = {"estimated": {},
                 "old": {"cases.*.slice_profile.thickness_mm": acquisition.spacing,
                         "cases.*.slice_profile.family": "gaussian"},
                 "told": {"cases.*.slice_profile.thickness_mm": acquisition.thickness,
                          "cases.*.slice_profile.family": acquisition.family}}[arm]
    plans = plan_and_preprocess(dataset, PlanOptions(overrides={**overrides, **(settings or {})}))
    tag = f"s{seed}b{budget:g}{variant}"
    run = run_training(dataset, "ssft", TrainingOptions(budget_minutes=budget, seed=seed, tag=tag))
    result = run_benchmark(dataset, BenchmarkOptions(upper_bound=False, classic=("cubic",)))
    label = next(m.label for m in result.models if m.run is not None and m.run.tag == tag)
    start = next(m.label for m in result.models if m.role == "mrft")
    record = run.record()
    psnr = result.summary["psnr_synth"]
    case_plan = plans.cases["brain"]
    guard = record.guard or {}
    witness = guard.get("hidden_slices") or {}
    # the run's own weights, also where the guard kept the start or the halfway weights: false rejects count on them
    tuned = fine_tuned_psnr(dataset, plans, run) if record.kept_start or record.kept_halfway else psnr[label]
    return {"source": source, "case": name, "arm": arm, "variant": variant, "seed": seed, "budget_min": budget,
            "thickness_mm": case_plan.slice_profile.thickness_mm, "true_thickness_mm": acquisition.thickness,
            "iterations": record.iterations_done, "cubic": psnr["cubic B-spline"], "start": psnr[start],
            "ssft": psnr[label], "gain": psnr[label] - psnr[start], "kept": guard.get("kept", ""),
            "tuned_gain": tuned - psnr[start], "validation_gain": guard.get("final_psnr", np.nan) -
            guard.get("start_psnr", np.nan), "witness_gain": witness.get("final_psnr", np.nan) -
            witness.get("start_psnr", np.nan), "witness_margin": witness.get("margin_db", np.nan)}


def fine_tuned_psnr(dataset: str, plans, run) -> float:
    """PSNR over synthesised slices of the run's fine-tuned weights (checkpoint_latest.pth), which the guard turned
    down (for the start or the halfway weights), so false rejects can be counted."""
    from isrnet.benchmarking.benchmark import BenchmarkModel, benchmark, load_cases
    model = BenchmarkModel("fine-tuned", run.folder / "checkpoint_latest.pth", "run", run)
    table, _ = benchmark(load_cases(dataset, plans, None), [model], classic=(), log=lambda _: None)
    return float(table.psnr_synth.mean())


ARMS = ("estimated", "old", "told")
CELL_KEY = ["source", "case", "arm", "variant", "seed", "budget_min"]


def merge_row(table: pd.DataFrame, row: dict) -> pd.DataFrame:
    """The table with `row` replacing any earlier result of the same cell (so the grid can be run in parts)."""
    if not table.empty:
        same = np.logical_and.reduce([table[key] == row[key] for key in CELL_KEY])
        table = table[~same]
    return pd.concat([table, pd.DataFrame([row])], ignore_index=True).sort_values(CELL_KEY, ignore_index=True)


def margin(row: pd.Series) -> float:
    """The witness's margin (dB) a cell recorded; 0 for cells run before the margin existed."""
    value = row.get("witness_margin", np.nan)
    return 0.0 if pd.isna(value) else float(value)


def guard_summary(table: pd.DataFrame) -> str:
    """Per guard rule over the cells that recorded both signals: false keeps and false rejects
    (sources.guard_outcome; false rejects counted among the cells where fine-tuning gained >= WORTH_DB), and the
    mean and worst result over the start."""
    rows = table.dropna(subset=["tuned_gain", "validation_gain", "witness_gain"]) if "witness_gain" in table else []
    if not len(rows):
        return "the guard table needs cells with the witness recorded (tuned_gain, validation_gain, witness_gain)"
    lines = [f"the guard's rules over {len(rows)} cells (reference PSNR; false keep: kept and < -{FALSE_KEEP_DB} dB; "
             f"false reject: turned down a gain >= {WORTH_DB} dB):"]
    from isrnet.configuration import GUARD_RULES
    from isrnet.training.guard import Signal, decide
    for rule in GUARD_RULES:  # each rule as training/guard.py applies it, on the recorded signals' gains
        kept = rows.apply(lambda row: decide(rule, Signal(0.0, row.validation_gain),
                                             Signal(0.0, row.witness_gain, margin(row)))[0] == "fine-tuned", axis=1)
        result = np.where(kept, rows.tuned_gain, 0.0)
        outcomes = [guard_outcome(k, gain) for k, gain in zip(kept, rows.tuned_gain)]
        worthwhile = rows.tuned_gain >= WORTH_DB
        false_keeps, false_rejects = outcomes.count("false keep"), outcomes.count("false reject")
        lines.append(f"  {rule:<18} false keeps {false_keeps}/{len(rows)}, false rejects {false_rejects}/"
                     f"{int(worthwhile.sum())}, mean {result.mean():+.2f} dB, worst {result.min():+.2f} dB")
    ran = rows[rows["kept"].isin(("start", "fine-tuned", "halfway"))] if "kept" in rows else rows.iloc[:0]
    if len(ran):
        lines.append(as_run(ran))
    return "\n".join(lines)


def as_run(rows: pd.DataFrame) -> str:
    """The guard as the cells ran it (their recorded decision, the halfway weights included): false keeps judged on
    the weights kept, false rejects on the fine-tuned weights where the start was kept, and where the halfway
    weights stood in for a worthwhile gain."""
    kept = rows["kept"] != "start"
    outcomes = [guard_outcome(k, gain if k else tuned) for k, gain, tuned in zip(kept, rows.gain, rows.tuned_gain)]
    worthwhile = rows.tuned_gain >= WORTH_DB
    halfway = (rows["kept"] == "halfway") & worthwhile
    return (f"  {'as run':<18} false keeps {outcomes.count('false keep')}/{len(rows)}, false rejects "
            f"{outcomes.count('false reject')}/{int(worthwhile.sum())} (halfway weights for {int(halfway.sum())}), "
            f"mean {rows.gain.mean():+.2f} dB, worst {rows.gain.min():+.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--budgets", nargs="+", type=float, default=[2.0, 4.0, 8.0])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=["estimated"])
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/ssft_mismatch"))
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="KEY=VALUE",
                        help="plans keys for every cell (e.g. sampler.wide_gap_share=0.25); name them with --variant")
    parser.add_argument("--variant", default="", help="a name for the --set cells (their runs' tag and table column)")
    add_sources_argument(parser)
    args = parser.parse_args()
    from isrnet.cli.common import parse_overrides
    settings = parse_overrides(args.settings)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    table_file = out / "ssft_mismatch.csv"
    table = pd.read_csv(table_file) if table_file.is_file() else pd.DataFrame()  # earlier invocations' cells
    if len(table) and "source" not in table:
        table.insert(0, "source", "deepmriprep")  # written before --sources existed
    if len(table) and "variant" not in table:
        table.insert(3, "variant", "")  # written before --variant existed
    if len(table):
        table["variant"] = table["variant"].fillna("")
    for source in args.sources:
        folder, fine = out / source, high_resolution(source)
        with paths.folders_under(folder):
            for name, arm, seed, budget in itertools.product(args.cases, args.arms, args.seeds, args.budgets):
                row = run_cell(folder, list(CASES).index(name), name, CASES[name], arm, seed, budget, fine, source,
                               args.variant, settings)
                print(pd.DataFrame([row]).to_string(index=False, float_format="{:.2f}".format), flush=True)
                table = merge_row(table, row)
                table.to_csv(table_file, index=False, float_format="%.4f")
    print(table.to_string(index=False, float_format="{:.2f}".format))
    print("\nssft - start (dB) per source (role: see benchmarks/sources.py):")
    print(spread_summary(table, "source", "gain"))
    for variant, part in table.groupby("variant"):
        print(f"\nvariant '{variant or 'default'}': " + guard_summary(part))
    for arm, part in table.groupby("arm"):
        fine_tuned = part[part.kept != "start"]
        print(f"{arm}: ssft >= start - 0.02 dB in {int((part.gain >= -0.02).sum())}/{len(part)} runs; the start was "
              f"kept in {int((part.kept == 'start').sum())}/{len(part)}; mean gain where the fine-tuned weights were "
              f"kept: {fine_tuned.gain.mean():+.2f} dB over {len(fine_tuned)} runs")


if __name__ == "__main__":
    main()
