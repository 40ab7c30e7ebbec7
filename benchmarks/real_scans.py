"""The real-scan table: hidden-slice evaluation of today's product on every real scan in benchmarks/sources.py.

Each scan is its own dataset (a folder with one file): every 2nd real slice is kept, the removed real slices are
predicted by linear and cubic interpolation, the pre-trained weights, ssft trained on that thinned scan only
(--budget-minutes) and patient-level adaptation from it (--adapt-minutes), and scored as `isr_benchmark -i SCAN
--hidden-slices` scores them (best blur width per method and case). Every real scan is judging material: nothing
trains or tunes on them (see sources.py).
Usage: python benchmarks/real_scans.py [--scans itk_t1 dipy_b0 ...] [--budget-minutes 4] [--adapt-minutes 1]
       [--weights FILE.pth] [--no-ssft] [--set KEY=VALUE ...] [--out DIR]
       [--inplane-average K] [--inplane-crop N] [--rician-snr S]   (controls: each scan changed in one way)
       [--thickness-ratio R]   (control: every method told the thickness R x the slice spacing)
       (about 6 min per scan with the defaults on 2 CPU cores; with --no-ssft, which judges the pre-trained weights
       alone, well under a minute)
real_scans.csv under --out accumulates scans across invocations (a re-run scan replaces its rows).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sources import REAL_SCANS, guard_outcome, real_scan_file, real_scan_folder, spread_summary  # noqa: E402


def run_scan(name: str, out: Path, args: argparse.Namespace) -> pd.DataFrame:
    from isrnet.benchmarking import HiddenSliceOptions, run_hidden_slices
    inputs = out / "inputs" / name
    if args.inplane_average > 1 or args.inplane_crop or args.rician_snr:
        shutil.rmtree(inputs, ignore_errors=True)
        inputs.mkdir(parents=True)
        control_variant(real_scan_file(name), inputs / f"{name}.nii.gz", args.inplane_average, args.inplane_crop,
                        args.rician_snr)
    else:
        real_scan_folder(name, inputs)
    options = HiddenSliceOptions(keep_every=args.keep_every, ssft=args.ssft, budget_minutes=args.budget_minutes,
                                 adapt_minutes=args.adapt_minutes if args.ssft else None, output=out / name,
                                 seed=args.seed, weights=args.weights, plans_overrides=args.settings,
                                 thickness_mm=told_thickness(inputs, args.thickness_ratio))
    result = run_hidden_slices(inputs, options)
    print(result.text, flush=True)
    table = result.table.copy()
    table.insert(0, "scan", name)
    table["role_of_scan"] = REAL_SCANS[name].role
    table["inplane_average"] = args.inplane_average
    table["inplane_crop"] = args.inplane_crop
    table["rician_snr"] = args.rician_snr
    table["thickness_ratio"] = args.thickness_ratio
    return table


def told_thickness(inputs: Path, ratio: float | None) -> float | None:
    """The thickness the evaluation is told for the scan in `inputs`: `ratio` x its slice spacing (the largest), or
    None (the pipeline decides it, as for a user's scan)."""
    if ratio is None:
        return None
    from isrnet.imageio.reader_writer import read_volumes
    return ratio * max(read_volumes(next(inputs.iterdir()))[0].spacing)


def control_variant(source: Path, target: Path, average: int = 1, crop: int | None = None,
                    rician_snr: float | None = None, seed: int = 0) -> None:
    """The scan changed in one controlled way, its slices otherwise untouched (the slice axis is the one with the
    largest spacing): in-plane pixels averaged over `average` x `average` blocks (SimpleITK's BinShrink), then the
    central `crop` x `crop` in-plane pixels kept, then complex Gaussian noise of sigma = the head's median /
    `rician_snr` added and the magnitude taken (Rician)."""
    import SimpleITK as sitk
    from isrnet.acquisition.mr_physics import complex_noise
    from isrnet.intensity import foreground_mask
    image = sitk.ReadImage(str(source), sitk.sitkFloat32)
    slice_axis = int(np.argmax(image.GetSpacing()))
    if average > 1:
        image = sitk.BinShrink(image, [1 if axis == slice_axis else average for axis in range(image.GetDimension())])
    if crop:
        size = image.GetSize()
        start = [0 if axis == slice_axis else max(0, (size[axis] - crop) // 2) for axis in range(len(size))]
        extent = [size[axis] if axis == slice_axis else min(crop, size[axis]) for axis in range(len(size))]
        image = sitk.RegionOfInterest(image, extent, start)
    if rician_snr:
        array = sitk.GetArrayFromImage(image)
        sigma = float(np.median(array[foreground_mask(array)])) / rician_snr
        noisy_image = sitk.GetImageFromArray(complex_noise(array, sigma, np.random.default_rng(seed)))
        noisy_image.CopyInformation(image)
        image = noisy_image
    sitk.WriteImage(image, str(target))


def guard_of(out: Path, name: str) -> dict:
    """The guard record of the scan's ssft on the thinned scan (its run in the evaluation's workspace)."""
    from isrnet.runs import RunRecord
    found = sorted((out / name / "workspace" / "results").glob("*/ssft/debug.json"))
    if not found:
        return {}
    record = RunRecord.load(found[0])
    return {"iterations": record.iterations_done, **(record.guard or {})}


def ssft_record(out: Path, name: str) -> str:
    """'N it, kept X, witness says Y' of the scan's ssft on the thinned scan."""
    guard = guard_of(out, name)
    if not guard:
        return ""
    witness = guard.get("hidden_slices")
    return (f"{guard['iterations']} it, kept {guard.get('kept', '?')}" +
            (f", witness says {witness['says']} ({witness['final_psnr'] - witness['start_psnr']:+.2f})"
             if witness else ""))


def guard_table(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Per scan: the judge's verdict on the fine-tuned weights (their hidden-slice PSNR on the removed slices minus the
    pre-trained weights'), the guard's decision (held-out simulated pairs) and its witness's (hidden real slices of
    the thinned scan), each judged by sources.guard_outcome."""
    pairs = table.pivot_table(index="scan", columns="role", values="psnr", sort=False)
    rows = []
    for scan, row in pairs.iterrows():
        guard = guard_of(out, scan)
        if not guard or "pretrained" not in row:
            continue
        tuned = row.get("ssft_unguarded") if pd.notna(row.get("ssft_unguarded", np.nan)) else row["ssft_thinned"]
        judge = tuned - row["pretrained"]
        witness = guard.get("hidden_slices") or {}
        entry = {"scan": scan, "judge_dB": judge, "guard": guard.get("kept", ""), "witness": witness.get("says", ""),
                 "witness_dB": witness.get("final_psnr", np.nan) - witness.get("start_psnr", np.nan),
                 "witness_margin_dB": witness.get("margin_db", np.nan)}
        for signal in ("guard", "witness"):
            kept = entry[signal] == "fine-tuned"
            entry[f"{signal}_outcome"] = guard_outcome(kept, judge)
            entry[f"{signal}_result_dB"] = judge if kept else 0.0
        if entry["guard"] == "halfway":  # the run's final weights are the halfway ones: judged as kept
            halfway = row["ssft_thinned"] - row["pretrained"]
            entry.update(guard_outcome=guard_outcome(True, halfway), guard_result_dB=halfway)
        rows.append(entry)
    return pd.DataFrame(rows)


def short(method: str) -> str:
    return (method.replace("isrnet ", "").replace(" (no fine-tuning)", "").replace(" on the thinned scans", " thinned")
            .replace("adapted per case", "adapted"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", nargs="+", choices=list(REAL_SCANS), default=list(REAL_SCANS))
    parser.add_argument("--keep-every", type=int, default=2)
    parser.add_argument("--budget-minutes", type=float, default=4.0)
    parser.add_argument("--adapt-minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--weights", type=Path, default=None,
                        help="pre-trained weights to judge (default: the shipped mrft.pth)")
    parser.add_argument("--no-ssft", dest="ssft", action="store_false",
                        help="judge the pre-trained weights only (no ssft, no adaptation)")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/real_scans"))
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="KEY=VALUE",
                        help="plans keys of each thinned scan's dataset, e.g. sampler.wide_gap_share=0.25")
    controls = parser.add_argument_group("controls: each scan changed in one way before it is thinned")
    controls.add_argument("--inplane-average", type=int, default=1, metavar="K",
                          help="average the in-plane pixels over K x K blocks (coarser in-plane detail; default 1: "
                               "the scan as it is)")
    controls.add_argument("--inplane-crop", type=int, default=None, metavar="N",
                          help="keep the central N x N in-plane pixels (after --inplane-average): a small field of "
                               "view")
    controls.add_argument("--rician-snr", type=float, default=None, metavar="S",
                          help="add Rician noise, sigma = the head's median intensity / S")
    controls.add_argument("--thickness-ratio", type=float, default=None, metavar="R",
                          help="tell every method the slice thickness R x the scan's slice spacing instead of the "
                               "decided one (what the thickness decision costs on real slices)")
    parser.add_argument("--report", action="store_true", help="only print the report of real_scans.csv in --out")
    args = parser.parse_args()
    if args.inplane_average < 1 or (args.inplane_crop is not None and args.inplane_crop < 8) or \
            (args.rician_snr is not None and args.rician_snr <= 0) or \
            (args.thickness_ratio is not None and not 0.1 <= args.thickness_ratio <= 3.0):
        parser.error("--inplane-average must be at least 1, --inplane-crop at least 8, --rician-snr above 0, "
                     "--thickness-ratio within 0.1-3")
    from isrnet.cli.common import parse_overrides
    args.settings = parse_overrides(args.settings)
    out = args.out.resolve()
    if args.report:
        report(pd.read_csv(out / "real_scans.csv"), out)
        return
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("isrnet_results", str(out / "user_results"))  # where the start weights are looked for
    table_file = out / "real_scans.csv"
    table = pd.read_csv(table_file) if table_file.is_file() else pd.DataFrame()
    for name in args.scans:
        rows = run_scan(name, out, args)
        table = pd.concat([table[table.scan != name] if len(table) else table, rows], ignore_index=True)
        table.to_csv(table_file, index=False, float_format="%.4f")
    report(table, out)


def report(table: pd.DataFrame, out: Path) -> None:
    """The per-scan gains, then per method: mean, worst, best and spread over scans, and who wins each scan."""
    table = table.assign(short=table.method.map(short))
    wide = table.pivot_table(index="scan", columns="short", values="gain_vs_best_classic_dB", sort=False)
    wide.insert(0, "best classic (dB)", table[table.role == "classic"].groupby("scan", sort=False).psnr.max()
                .map("{:.2f}".format))
    wide.insert(1, "factor (yours -> network)", table.groupby("scan", sort=False).apply(
        lambda part: f"{part.user_factor.iloc[0]:.2f} -> {part.network_factor.iloc[0]:.2f}", include_groups=False))
    wide["ssft run"] = [ssft_record(out, scan) for scan in wide.index]
    print("gain over each scan's best classic interpolant (dB):")
    print(wide.to_string(float_format="{:+.2f}".format))
    networks = table[table.role != "classic"]
    print("\nper method over the scans (gain over the best classic, dB):")
    print(spread_summary(networks, "short", "gain_vs_best_classic_dB", overall=False))
    winners = table[table.wins_case].groupby("scan", sort=False).short.first()
    print("\nwho wins each scan: " + ", ".join(f"{scan}: {method}" for scan, method in winners.items()))
    pairs = networks.pivot_table(index="scan", columns="role", values="psnr", sort=False)
    guards = guard_table(table, out)
    if len(guards):
        print("\nthe guard (held-out simulated pairs) and its witness (hidden real slices of the thinned scan) against "
              "the judge (the removed real slices; fine-tuned minus pre-trained, dB):")
        print(guards.to_string(index=False, float_format="{:+.2f}".format))
        for signal in ("guard", "witness"):
            outcomes = guards[f"{signal}_outcome"].value_counts()
            print(f"{signal}: false keeps {outcomes.get('false keep', 0)}, false rejects "
                  f"{outcomes.get('false reject', 0)} of {len(guards)}; deciding alone it would give "
                  f"{guards[f'{signal}_result_dB'].mean():+.2f} dB over the pre-trained weights on average "
                  f"(worst {guards[f'{signal}_result_dB'].min():+.2f})")
    for role in ("ssft_thinned", "adapted"):
        if role in pairs and "pretrained" in pairs:
            difference = (pairs[role] - pairs["pretrained"]).dropna()
            print(f"{role} - pre-trained weights: mean {difference.mean():+.2f} dB, worst {difference.min():+.2f}, "
                  f"below them on {int((difference < -0.005).sum())} of {len(difference)} scans")


if __name__ == "__main__":
    main()
