"""Patient-level adaptation: does `isr_predict --adapt-minutes M` add to dataset-level ssft, case by case?

Material: two 1 mm T1 templates, three simulated acquisitions each, different in orientation, spacing, slice
profile, noise and contrast (written as NIfTI without a stated thickness: planning and prediction estimate it):
  dmp_ax        deepmriprep (the template mrft never saw), axial, Gaussian 4 mm every 4 mm, slice axis last
  dmp_cor_rect  deepmriprep, coronal, rect 5 mm every 5 mm, Rician SNR 30
  dmp_sag_t2    deepmriprep, sagittal, T2-like contrast, Gaussian 3 mm every 3 mm
  mni_ax_noise  MNI152 2009a (nilearn), axial, Gaussian 4 mm every 4 mm, Rician SNR 20, slice axis last
  mni_cor_gap   MNI152, coronal, Gaussian 2 mm every 4 mm (a slice gap)
  mni_obl       MNI152, axial tilted 20 degrees (oblique header), Gaussian 5 mm every 5 mm
With --sources S1 S2 ...: the six acquisitions above (axial 4/4; coronal rect 5/5 SNR 30; sagittal T2-like 3/3;
axial 4/4 SNR 20; coronal 2 mm every 4 mm; oblique 5/5) of each source instead, cases named <source>_<acquisition>,
and the gains reported per source (sources.py says which sources are training material).
Per seed: isr_plan_and_preprocess and isr_train ssft on all six (the plan's budget unless --dataset-minutes),
then isr_predict with the shipped weights, with the dataset's ssft model, and with that model adapted to each
case for --adapt-minutes (every case, --adapt-when always, with what the default rule would have decided, so the
rule can be judged). Score: PSNR over the synthesised slices inside the head (isr_benchmark's metric).
Usage: python benchmarks/patient_adaptation.py [--seeds 1 2] [--adapt-minutes 2] [--dataset-minutes M]
       [--adapt-set training.lr=5e-4 ...] [--out DIR]   (2 seeds at the defaults: about 55 minutes on 2 CPU cores;
       a later call reuses each seed's dataset-level run and predictions, so a variant costs the adaptation only)
Everything is written under --out (default ./benchmark_output/patient_adaptation); your isrnet folders are untouched.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from isrnet.imageio import Volume, read_volume, write_volume  # noqa: E402
from sources import HR_SOURCES, high_resolution, spread_summary  # noqa: E402
from ssft_mismatch_set import Acquisition, make_case  # noqa: E402

DATASET = "Dataset850_PatientMix"
SI, AP, LR = 0, 1, 2  # template array axes after `si_first` (the slice axis of each acquisition)
ACQUISITIONS = {  # name: (anatomical slice axis, acquisition, array axis the slice axis is stored on)
    "ax": (SI, Acquisition("gaussian", 4.0, 4.0), 2),
    "cor_rect": (AP, Acquisition("rect", 5.0, 5.0, snr=30.0), 0),
    "sag_t2": (LR, Acquisition("gaussian", 3.0, 3.0, contrast="t2like"), 0),
    "ax_noise": (SI, Acquisition("gaussian", 4.0, 4.0, snr=20.0), 2),
    "cor_gap": (AP, Acquisition("gaussian", 4.0, 2.0), 1),
    "obl": (SI, Acquisition("gaussian", 5.0, 5.0, oblique=True), 0),
}
MIX = {"dmp_ax": ("deepmriprep", "ax"), "dmp_cor_rect": ("deepmriprep", "cor_rect"),  # without --sources
       "dmp_sag_t2": ("deepmriprep", "sag_t2"), "mni_ax_noise": ("mni152", "ax_noise"),
       "mni_cor_gap": ("mni152", "cor_gap"), "mni_obl": ("mni152", "obl")}


def cases_for(sources: list[str] | None) -> dict[str, tuple]:
    """case -> (source, anatomical slice axis, acquisition, stored-on axis): the mix, or six per source."""
    chosen = MIX if not sources else {f"{source}_{acquisition}": (source, acquisition)
                                      for source in sources for acquisition in ACQUISITIONS}
    return {name: (source, *ACQUISITIONS[acquisition]) for name, (source, acquisition) in chosen.items()}


CASES = cases_for(None)


def stored_with_slice_axis_on(volume: Volume, axis: int) -> Volume:
    """The same image with its array axis 0 moved to `axis` (spacing and direction columns follow)."""
    order = [a for a in range(3) if a != 0]
    order.insert(axis, 0)  # new array axis i holds old axis order[i]
    return Volume(np.ascontiguousarray(np.transpose(volume.array, order)), tuple(volume.spacing[a] for a in order),
                  volume.origin, volume.direction[:, order])


def write_dataset(folder: Path) -> None:
    from dataset_conversion.staging import write_dataset_json
    from isrnet.benchmarking.benchmark import SIMULATED_ACQUISITION_KEY
    templates = {source: high_resolution(source) for source in dict.fromkeys(c[0] for c in CASES.values())}
    truth = {}
    for index, (name, (template, axis, acquisition, stored_on)) in enumerate(CASES.items()):
        fine = np.moveaxis(templates[template], axis, 0)
        low, reference = make_case(fine, acquisition, seed=index)
        write_volume(stored_with_slice_axis_on(low, stored_on), folder / "imagesTr" / f"{name}.nii.gz")
        write_volume(stored_with_slice_axis_on(reference, stored_on), folder / "referenceTr" / f"{name}.nii.gz")
        truth[name] = {"thickness_mm": acquisition.thickness, "family": acquisition.family,
                       "slice_spacing_mm": acquisition.spacing}
    write_dataset_json(folder, DATASET.split("_", 1)[1], "target", ".nii.gz", len(CASES),
                       f"patient-level adaptation benchmark: {len(CASES)} simulated acquisitions of "
                       f"{', '.join(templates)}", "MIT",
                       extra={SIMULATED_ACQUISITION_KEY: truth})


def score(output: Path, references: Path) -> dict[str, float]:
    """PSNR over synthesised slices of every prediction in `output` (isr_benchmark's metric)."""
    from isrnet.evaluation.metrics import compare
    from isrnet.utilities.files import load_json
    scores = {}
    for name in CASES:
        sidecar = load_json(output / f"{name}.json")
        result = compare(read_volume(output / sidecar["output"]), read_volume(references / f"{name}.nii.gz"),
                         sidecar["slice_axis"], np.asarray(sidecar["input_positions"]))
        scores[name] = result["psnr_synth"]
    return scores


def run_seed(out: Path, seed: int, adapt_minutes: float, dataset_minutes: float | None,
             adapt_overrides: dict | None = None, label: str = "") -> pd.DataFrame:
    from isrnet.inference import PredictOptions, predict_paths
    from isrnet.training import AdaptationOptions
    from isrnet.runs import Run
    from isrnet.training import TrainingOptions, run_training
    from isrnet.utilities.files import load_json
    images, references = out / "raw" / DATASET / "imagesTr", out / "raw" / DATASET / "referenceTr"
    run = Run(DATASET, "ssft", f"s{seed}")
    if not run.finished:  # the dataset-level run is shared by every adaptation variant of this seed
        run = run_training(DATASET, "ssft", TrainingOptions(budget_minutes=dataset_minutes, seed=seed, tag=f"s{seed}"))
    folders = {"shipped": out / "predictions" / "shipped", "dataset_ssft": out / "predictions" / f"ssft_s{seed}",
               "adapted": out / "predictions" / f"adapted_s{seed}_{adapt_minutes:g}min{label}"}
    if not (folders["shipped"] / f"{list(CASES)[-1]}.json").is_file():
        predict_paths(images, folders["shipped"], None)
    if not (folders["dataset_ssft"] / f"{list(CASES)[-1]}.json").is_file():
        predict_paths(images, folders["dataset_ssft"], run.folder)
    adaptation = AdaptationOptions(minutes=adapt_minutes, seed=seed, plans_overrides=adapt_overrides or {},
                                   when="always")  # every case, so the skip rule's choice can be judged
    if not (folders["adapted"] / f"{list(CASES)[-1]}.json").is_file():  # a finished variant is reused
        predict_paths(images, folders["adapted"], run.folder, PredictOptions(adaptation=adaptation))
    scores = {label: score(folder, references) for label, folder in folders.items()}
    rows = []
    for name in CASES:
        record = load_json(folders["adapted"] / f"{name}.json")["adaptation"]
        rows.append({"source": CASES[name][0], "case": name, "seed": seed, "shipped": scores["shipped"][name],
                     "dataset_ssft": scores["dataset_ssft"][name], "adapted": scores["adapted"][name],
                     "gain": scores["adapted"][name] - scores["dataset_ssft"][name], "kept": record["kept"],
                     "iterations": record["iterations"], "seconds": record["seconds"],
                     "rule_adapts": (record.get("need") or {}).get("adapt", True),
                     "unlike": ",".join((record.get("need") or {}).get("unlike", [])),
                     "thickness_mm": record["slice_profile"]["thickness_mm"],
                     "true_thickness_mm": CASES[name][2].thickness})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--adapt-minutes", type=float, default=2.0)
    parser.add_argument("--dataset-minutes", type=float, help="dataset-level ssft budget (default: the plan's)")
    parser.add_argument("--adapt-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="plans keys of the per-case runs (AdaptationOptions.plans_overrides), e.g. training.lr=5e-4")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/patient_adaptation"))
    parser.add_argument("--sources", nargs="+", default=None, choices=list(HR_SOURCES),
                        help="six acquisitions of each of these sources (see sources.py) instead of the deepmriprep/"
                             "MNI152 mix; written under --out/<sources>")
    args = parser.parse_args()
    global CASES
    CASES = cases_for(args.sources)
    from isrnet.cli.common import parse_overrides
    overrides = parse_overrides(args.adapt_set)
    label = "".join(f"_{key.split('.')[-1]}{value}" for key, value in overrides.items())
    out = args.out.resolve() / ("+".join(args.sources) if args.sources else "")
    os.environ.update(isrnet_raw=str(out / "raw"), isrnet_preprocessed=str(out / "preprocessed"),
                      isrnet_results=str(out / "results"))
    from isrnet.experiment_planning import plan_and_preprocess
    if not (out / "raw" / DATASET / "dataset.json").is_file():
        write_dataset(out / "raw" / DATASET)
    plan_and_preprocess(DATASET)
    table = pd.concat([run_seed(out, seed, args.adapt_minutes, args.dataset_minutes, overrides, label)
                       for seed in args.seeds], ignore_index=True)
    table.to_csv(out / f"patient_adaptation{label}.csv", index=False, float_format="%.4f")
    print(table.to_string(index=False, float_format="{:.2f}".format))
    per_case = table.groupby("case", sort=False).gain.agg(["mean", "min", "max"])
    per_case["seed_spread"] = per_case["max"] - per_case["min"]
    print("\ngain of adaptation over dataset-level ssft, per case across seeds (dB):")
    print(per_case.to_string(float_format="{:+.2f}".format))
    print("\ngain of adaptation over dataset-level ssft per source (dB):\n" + spread_summary(table, "source", "gain"))
    print(f"\nmean gain {table.gain.mean():+.3f} dB over {len(table)} runs (per seed: "
          f"{', '.join(f'{s}: {g:+.3f}' for s, g in table.groupby('seed').gain.mean().items())}); worst case "
          f"{table.gain.min():+.3f} dB; start kept in {int((table.kept == 'start').sum())}/{len(table)}; "
          f"{table.seconds.mean():.0f} s and {table.iterations.mean():.0f} iterations per case")
    print(need_summary(table))


def need_summary(table: pd.DataFrame) -> str:
    """Adaptation's gain where `isr_predict --adapt-when unlike` (the default) would adapt and where it skips."""
    if "rule_adapts" not in table:
        return ""
    lines = ["\nthe skip rule (training/adaptation_need.py; every case was adapted here to judge it):"]
    for adapts, part in table.groupby(table.rule_adapts.astype(bool)):
        lines.append(f"  {'adapted' if adapts else 'skipped'}: {len(part)} runs, gain over dataset ssft mean "
                     f"{part.gain.mean():+.3f} dB (worst {part.gain.min():+.3f}, best {part.gain.max():+.3f})")
    result = np.where(table.rule_adapts.astype(bool), table.gain, 0.0)
    lines.append(f"  with the rule: mean {result.mean():+.3f} dB over all {len(table)} runs, worst {result.min():+.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
