"""How well the slice profile is estimated from the data, what each error costs, and what the pipeline decides.

Parts (--parts; each writes a CSV under --out, default ./benchmark_output/slice_profile, and prints its table):
- grid: per --sources high-resolution volume at 1 mm (default: deepmriprep's brain, pydeface's head and the Colin27
  head; sources.py gives their roles), slice axis superior-inferior, every factor {2, 2.5, 3, 4, 5, 6} x
  thickness/spacing {0.5, 0.75, 1, 1.25, 1.5} x profile {gaussian, rect, rf (a windowed-sinc RF pulse)}, in one of
  three conditions, balanced over factors, ratios and profiles: clean; Rician noise at SNR 20; oblique (anatomy
  tilted 20 degrees to the slices, in-plane zero-filled to 0.5 mm pixels: a resampled grid whose pixels are finer
  than its resolution). 90 cells per source. An estimate is right within 15 % of the true FWHM, or, when it says
  Gaussian for a box-like profile (rect, rf), within 15 % of that profile's Gaussian equivalent
  (estimation.gaussian_equivalent: the Gaussian with the closest passband below the slice Nyquist).
- real: real scans whose thickness a header states (heudiconv's DWI b0, 1.5 mm every 1.5 mm, also thinned to every
  2nd and 3rd slice; heudiconv's EPI, 3 mm every 3.6 mm, also every 2nd; the Philips phantom, 6 mm every 8 mm). A
  thinned scan keeps its slices' thickness, so its truth is the header's.
- cost: per grid cell, the shipped weights' PSNR on the synthesised slices (a central block of 16 thick slices by 96 x 96 mm) when
  told the true FWHM, the estimate, the decided thickness and the spacing: what a wrong width costs in dB.
- hidden: every real scan in sources.py (header thickness or not), its slices thinned to every 2nd and the removed
  real slices predicted by the shipped weights (the hidden-slice evaluation, no ssft) told the decided thickness and
  R x the slice spacing for each R in {0.5, 0.75, 1, 1.25, 1.5}: what the decision costs on real slices, against
  the best of those widths and against the spacing (about 6 s per scan and width).
- ssft: on mismatched cells, the same budget of ssft with the estimated profile and with the old assumption
  (Gaussian, FWHM = spacing), each against the starting (shipped mrft) weights (ssft_mismatch_set.run_cell).
- anisotropy: why the estimate's two in-plane axes disagree. Per volume (every high-resolution source and real scan)
  and anatomical direction (left-right, anterior-posterior, superior-inferior: the array axis nearest each), the
  mean power of windowed foreground segments (32 mm) in two bands, 0.05-0.15 cycles/mm (below a 3-10 mm slice's
  Nyquist) and 0.2-0.45 (fine detail; only on axes with pixels of 1.1 mm or less), and each pair of axes' ratio.
  The estimator assumes the slice axis looks like an in-plane axis; a ratio far from 1 says how far that fails.
Usage: python benchmarks/slice_profile_estimation.py [--parts grid real cost hidden ssft anisotropy] [--sources ...]
       [--budget-minutes 2] [--out DIR]    (grid: about 5 s per cell on 2 CPU cores; cost: about 15 s per cell)
The decision rule (slice_profile.decide_thickness) is judged per source; sources.py says which source it was chosen
on (the development source) and which it is reported on.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ssft_mismatch_set.py beside this script

from isrnet.acquisition import simulate_thick_slices  # noqa: E402
from isrnet.acquisition.estimation import (estimate_slice_profile, foreground_segments,  # noqa: E402
                                           gaussian_equivalent)
from isrnet.errors import IsrnetError  # noqa: E402
from isrnet.imageio import Volume  # noqa: E402
from sources import (HR_SOURCES, REAL_SCANS, add_sources_argument, high_resolution, high_resolution_file,  # noqa: E402
                     real_scan_file, real_scan_folder, spread_summary)
from ssft_mismatch_set import rician_noise, tilted as tilted_anatomy  # noqa: E402

FACTORS = (2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5)
FAMILIES = ("gaussian", "rect", "rf")
CONDITIONS = ("clean", "noise", "oblique")
SNR = 20.0
ZERO_FILL = 2  # oblique cells: in-plane pixels per acquired (1 mm) pixel
TOLERANCE = 0.15
COST_CROP = 96  # the cost part's block: in-plane 1 mm pixels around the centre ...
COST_SLICES = 16  # ... and thick slices
BOX_LIKE = ("rect", "rf", "trapezoid")
# real scans with a stated thickness: (scan, header thickness mm, keep every K-th slice, slice axis of the array,
# which is SimpleITK's [z, y, x]: the acquisition's slices are along z, also for the isotropic DWI)
REAL_CELLS = (("heudiconv_dwi_b0", 1.5, 1, 0), ("heudiconv_dwi_b0", 1.5, 2, 0), ("heudiconv_dwi_b0", 1.5, 3, 0),
              ("heudiconv_epi", 3.0, 1, 0), ("heudiconv_epi", 3.0, 2, 0), ("philips_epi_phantom", 6.0, 1, 0))
# mismatched cells for the ssft comparison: (family, factor, thickness / spacing)
SSFT_CELLS = (("gaussian", 4, 0.5), ("rect", 4, 1.0), ("gaussian", 4, 1.5), ("trapezoid", 3, 0.8))


def grid_cells() -> list[tuple[float, float, str, str]]:
    """(factor, ratio, family, condition): every factor x ratio x family once, the condition rotating so that each
    factor, ratio and family meets every condition."""
    return [(factor, ratio, family, CONDITIONS[(i + j + k) % len(CONDITIONS)])
            for i, factor in enumerate(FACTORS) for j, ratio in enumerate(RATIOS) for k, family in enumerate(FAMILIES)]


def zero_filled(array: np.ndarray, times: int) -> np.ndarray:
    """In-plane (axes 1, 2) interpolated `times` finer by zero-filling k-space, as scanners do."""
    for axis in (1, 2):
        array = signal.resample(array, array.shape[axis] * times, axis=axis)
    return array.clip(0).astype(np.float32)


def acquire(fine: np.ndarray, tilted: np.ndarray, cell: tuple, rng: np.random.Generator) -> tuple[Volume, Volume]:
    """(thick-slice volume, 1 mm reference on the same in-plane grid) of one grid cell."""
    factor, ratio, family, condition = cell
    material = tilted if condition == "oblique" else fine
    keep = int((material.shape[0] - 1) // factor * factor) + 1
    material = material[:keep]
    low = simulate_thick_slices(material, 0, factor, ratio * factor, family)[0]
    if condition == "noise":
        low = rician_noise(low, SNR, rng)
    if condition == "oblique":
        low, material = zero_filled(low, ZERO_FILL), zero_filled(material, ZERO_FILL)
    pixel = 1.0 / ZERO_FILL if condition == "oblique" else 1.0
    return Volume(low, (factor, pixel, pixel)), Volume(material.astype(np.float32), (1.0, pixel, pixel))


def judged(row: dict, estimate_key: str = "estimated_fwhm_mm") -> bool:
    """Right within TOLERANCE of the true FWHM, or of the Gaussian equivalent of a box-like profile."""
    estimate = row[estimate_key]
    right = abs(estimate / row["fwhm_mm"] - 1) <= TOLERANCE
    if row["family"] in BOX_LIKE:
        right = right or abs(estimate / row["gaussian_equivalent_mm"] - 1) <= TOLERANCE
    return bool(right)


def estimate_row(low: Volume, truth_mm: float, family: str) -> dict:
    from isrnet.acquisition.slice_profile import decide_thickness
    spacing = low.spacing
    row = {"fwhm_mm": truth_mm, "spacing_mm": spacing[0], "pixel_mm": min(spacing[1:]),
           "ratio": truth_mm / spacing[0],
           "gaussian_equivalent_mm": gaussian_equivalent(family, truth_mm, spacing[0]), "family": family}
    started = time.time()
    try:
        found = estimate_slice_profile(low.array, spacing)
        row.update(estimated_family=found.family, estimated_fwhm_mm=found.fwhm_mm, confidence=found.confidence,
                   family_margin=found.family_margin, note="")
    except IsrnetError as error:
        found = None
        row.update(estimated_family="", estimated_fwhm_mm=np.nan, confidence=0.0, family_margin=np.nan,
                   note=str(error))
    row["seconds"] = time.time() - started
    decided, reason = decide_thickness(found, spacing)
    row.update(decided_mm=decided, decided_by=reason)
    row["right"] = found is not None and judged(row)
    row["decided_right"] = judged(row, "decided_mm")
    row["spacing_right"] = judged(row, "spacing_mm")
    return row


def redecide(table: pd.DataFrame) -> pd.DataFrame:
    """The decision columns of a stored grid or real table again, with today's decide_thickness (the estimates are
    kept: a rule is judged without estimating again)."""
    from isrnet.acquisition.estimation import ProfileEstimate
    from isrnet.acquisition.slice_profile import decide_thickness
    rows = []
    for row in table.to_dict("records"):
        found = None if not np.isfinite(row["estimated_fwhm_mm"]) else ProfileEstimate(
            row["estimated_family"], row["estimated_fwhm_mm"], row["confidence"], row["family_margin"])
        row["decided_mm"], row["decided_by"] = decide_thickness(
            found, (row["spacing_mm"], row["pixel_mm"], row["pixel_mm"]))
        row["decided_right"] = judged(row, "decided_mm")
        rows.append(row)
    return pd.DataFrame(rows)


def _material(source: str) -> tuple[np.ndarray, np.ndarray]:
    """The source at 1 mm, and the same anatomy tilted for the oblique cells."""
    fine = high_resolution(source)
    return fine, tilted_anatomy(fine)


def grid_table(source: str, out: Path) -> pd.DataFrame:
    fine, tilted = _material(source)
    rng, rows, cells = np.random.default_rng(0), [], grid_cells()
    for index, cell in enumerate(cells):
        factor, ratio, family, condition = cell
        low, _ = acquire(fine, tilted, cell, rng)
        row = {"source": source, "role": HR_SOURCES[source].role, "factor": factor, "condition": condition,
               **estimate_row(low, ratio * factor, family)}
        rows.append(row)
        print(f"[{index + 1}/{len(cells)}] {source} {family} x{factor:g} T/S {ratio:g} {condition}: estimate "
              f"{row['estimated_fwhm_mm']:.2f} mm (confidence {row['confidence']:.2f}), decided {row['decided_mm']:.2f} "
              f"({row['decided_by']}); truth {row['fwhm_mm']:g} (Gaussian equivalent "
              f"{row['gaussian_equivalent_mm']:.2f}): {'right' if row['decided_right'] else 'WRONG'}", flush=True)
        pd.DataFrame(rows).to_csv(out / "grid.csv", index=False, float_format="%.4f")
    return pd.DataFrame(rows)


def real_table(out: Path) -> pd.DataFrame:
    from isrnet.imageio import read_volume
    rows = []
    for name, thickness, keep, axis in REAL_CELLS:
        volume = read_volume(real_scan_file(name))
        stack = np.moveaxis(volume.array.astype(np.float32), axis, 0)[::keep]
        spacing = (volume.spacing[axis] * keep, *[s for a, s in enumerate(volume.spacing) if a != axis])
        low = Volume(stack, spacing)
        row = {"scan": name, "keep_every": keep, "what": REAL_SCANS[name].what,
               **estimate_row(low, thickness, "rf")}  # a 2D acquisition's profile: an RF pulse's
        rows.append(row)
        print(f"{name} every {keep}: truth {thickness:g} mm every {spacing[0]:.2f} (Gaussian equivalent "
              f"{row['gaussian_equivalent_mm']:.2f}); estimate {row['estimated_fwhm_mm']:.2f} (confidence "
              f"{row['confidence']:.2f}) decided {row['decided_mm']:.2f} ({row['decided_by']})", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "real.csv", index=False, float_format="%.4f")
    return table


def cost_table(source: str, grid: pd.DataFrame, out: Path, only_wrong: bool = True) -> pd.DataFrame:
    """PSNR of the shipped weights told each width, per grid cell of `source` (with `only_wrong`, the cells whose
    decided width is wrong), on a central block of the material (COST_SLICES thick slices, COST_CROP pixels square
    before any zero-filling): what a wrong width costs."""
    from isrnet.evaluation.metrics import compare
    from isrnet.imageio.geometry import input_slice_positions
    from isrnet.inference import PredictionSettings, Predictor
    from isrnet.pretrained import shipped_weights
    predictor = Predictor.from_checkpoint(shipped_weights("mrft"))
    fine, tilted = _material(source)
    rng, rows = np.random.default_rng(0), []
    part = grid[grid.source == source].reset_index(drop=True)
    for index, (cell, row) in enumerate(zip(grid_cells(), part.to_dict("records"))):
        if only_wrong and row["decided_right"]:
            continue
        block = _central_block(fine.shape, int(COST_SLICES * cell[0]) + 1)
        low, reference = acquire(fine[block], tilted[block], cell, rng)
        positions = input_slice_positions(low, 0)
        widths = {"truth": row["fwhm_mm"], "estimate": row["estimated_fwhm_mm"], "decided": row["decided_mm"],
                  "spacing": row["spacing_mm"]}
        scores: dict[float, float] = {}
        result = {"source": source, "family": row["family"], "factor": row["factor"], "ratio": row["ratio"],
                  "condition": row["condition"]}
        for name, width in widths.items():
            key = round(float(width), 3) if np.isfinite(width) else None
            if key is not None and key not in scores:
                output = predictor.predict(low, PredictionSettings(factor=row["factor"], thickness_mm=key))
                scores[key] = compare(output, reference, 0, positions)["psnr_synth"]
            result[f"psnr_{name}"] = scores.get(key, np.nan)
        for name in ("estimate", "decided", "spacing"):
            result[f"cost_{name}_dB"] = result["psnr_truth"] - result[f"psnr_{name}"]
        rows.append(result)
        print(f"[{index + 1}/{len(part)}] {source} {row['family']} x{row['factor']:g} T/S {row['ratio']:g} "
              f"{row['condition']}: cost of the estimate {result['cost_estimate_dB']:+.2f} dB, of the decision "
              f"{result['cost_decided_dB']:+.2f}, of the spacing {result['cost_spacing_dB']:+.2f}", flush=True)
        pd.DataFrame(rows).to_csv(out / "cost.csv", index=False, float_format="%.4f")
    return pd.DataFrame(rows)


def hidden_cost_table(out: Path) -> pd.DataFrame:
    """Per real scan: the shipped weights' hidden-slice gain over the best classic interpolant told the decided
    thickness and each R x the slice spacing (R in RATIOS), and what the decided one costs against the best of them
    and against the spacing (positive: the decided thickness is worse)."""
    from isrnet.benchmarking import HiddenSliceOptions, run_hidden_slices
    from isrnet.imageio import read_volumes
    rows = []
    for name, scan in REAL_SCANS.items():
        inputs = out / "hidden" / name / "input"
        spacing = max(read_volumes(real_scan_folder(name, inputs))[0].spacing)
        row = {"scan": name, "role": scan.role, "spacing_mm": spacing}
        for ratio in (None, *RATIOS):
            label = "decided" if ratio is None else f"{ratio:g}"
            told = None if ratio is None else ratio * spacing
            result = run_hidden_slices(inputs, HiddenSliceOptions(ssft=False, output=out / "hidden" / name / label,
                                                                  thickness_mm=told))
            pretrained = result.table[result.table.role == "pretrained"].iloc[0]
            if ratio is None:
                row.update(decided_mm=pretrained.thickness_mm, decided_by=pretrained.thickness_source)
            row[f"gain_{label}_dB"] = pretrained.gain_vs_best_classic_dB
        gains = {ratio: row[f"gain_{ratio:g}_dB"] for ratio in RATIOS}
        best = max(gains, key=gains.get)
        row.update(best_ratio=best, cost_vs_best_dB=gains[best] - row["gain_decided_dB"],
                   cost_vs_spacing_dB=gains[1.0] - row["gain_decided_dB"])
        rows.append(row)
        print(f"{name}: decided {row['decided_mm']:.2f} mm of {spacing:.2f} ({row['decided_mm'] / spacing:.2f} x), "
              f"gain {row['gain_decided_dB']:+.2f} dB; best told {best:g} x the spacing {gains[best]:+.2f}; "
              f"the spacing {gains[1.0]:+.2f}", flush=True)
        pd.DataFrame(rows).to_csv(out / "hidden.csv", index=False, float_format="%.4f")
    return pd.DataFrame(rows)


def _central_block(shape: tuple[int, ...], slices: int) -> tuple[slice, ...]:
    """`slices` along axis 0 and COST_CROP in-plane, around the centre of `shape`."""
    sizes = (min(slices, shape[0]), min(COST_CROP, shape[1]), min(COST_CROP, shape[2]))
    return tuple(slice((n - size) // 2, (n - size) // 2 + size) for n, size in zip(shape, sizes))


def summarise_grid(table: pd.DataFrame) -> str:
    lines = []
    for source, part in table.groupby("source", sort=False):
        role = HR_SOURCES[source].role if source in HR_SOURCES else ""
        lines.append(f"{source} ({role}{', the decision rule was chosen here' if role == 'development' else ''}): "
                     f"estimate right {int(part.right.sum())}/{len(part)}, decided "
                     f"right {int(part.decided_right.sum())}/{len(part)}, the spacing right "
                     f"{int(part.spacing_right.sum())}/{len(part)}")
        for key in ("condition", "family", "factor"):
            counts = part.groupby(key, sort=False).agg(right=("right", "sum"), decided=("decided_right", "sum"),
                                                       n=("right", "size"))
            lines.append("  by " + key + ": " + ", ".join(
                f"{name} {int(r.right)}/{int(r.decided)}/{int(r.n)}" for name, r in counts.iterrows()) +
                "  (estimate / decided right / cells)")
    lines.append(f"all: estimate right {int(table.right.sum())}/{len(table)} ({100 * table.right.mean():.0f} %), "
                 f"decided right {int(table.decided_right.sum())}/{len(table)} "
                 f"({100 * table.decided_right.mean():.0f} %)")
    return "\n".join(lines)


def ssft_comparison(fine: np.ndarray, budget: float, out: Path) -> pd.DataFrame:
    """Per mismatched cell: PSNR of cubic, the starting weights and ssft, with the estimated and the old profile
    (the cells are run by ssft_mismatch_set.run_cell, one code path for both benchmarks)."""
    from ssft_mismatch_set import Acquisition, run_cell
    os.environ.update(isrnet_raw=str(out / "raw"), isrnet_preprocessed=str(out / "preprocessed"),
                      isrnet_results=str(out / "results"))
    rows = []
    for number, (family, factor, ratio) in enumerate(SSFT_CELLS):
        acquisition = Acquisition(family, float(factor), ratio * factor)
        row = {"family": family, "factor": factor, "ratio": ratio, "fwhm_mm": ratio * factor}
        for arm in ("estimated", "old"):
            cell = run_cell(out, number, f"Cell{number}", acquisition, arm, 1, budget, fine)
            row.update({f"{arm}_thickness_mm": cell["thickness_mm"], "cubic": cell["cubic"],
                        f"start_{arm}": cell["start"], f"ssft_{arm}": cell["ssft"], f"kept_{arm}": cell["kept"]})
        row["estimated_beats_old"] = row["ssft_estimated"] > row["ssft_old"]
        row["estimated_not_below_start"] = row["ssft_estimated"] >= row["start_estimated"] - 0.02
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format="{:.2f}".format), flush=True)
    return pd.DataFrame(rows)


ANATOMY = ("left-right", "anterior-posterior", "superior-inferior")  # LPS world axes 0, 1, 2
BANDS = {"low": (0.05, 0.15), "fine": (0.2, 0.45)}  # cycles/mm
SEGMENT_MM = 32.0
FINE_PIXEL_MM = 1.1  # the fine band only on axes this sharp
MIN_POWER_SEGMENTS = 100  # fewer foreground segments on an axis: no band power (nan)


def axis_band_power(array: np.ndarray, mask: np.ndarray, axis: int, spacing_mm: float) -> dict[str, float]:
    """Mean power per band of Hann-windowed, mean-removed foreground segments along `axis` (nan: band not carried)."""
    length = max(8, int(round(SEGMENT_MM / spacing_mm)))
    lines = np.moveaxis(array, axis, -1).reshape(-1, array.shape[axis])
    inside = np.moveaxis(mask, axis, -1).reshape(-1, array.shape[axis])
    segments = foreground_segments(lines, inside, length, hop=length // 2)[0]
    frequency = np.fft.rfftfreq(length, spacing_mm)
    result = {}
    for band, (low, high) in BANDS.items():
        chosen = (frequency >= low) & (frequency <= high)
        sharp_enough = band != "fine" or spacing_mm <= FINE_PIXEL_MM
        carried = len(segments) >= MIN_POWER_SEGMENTS and chosen.any() and sharp_enough
        if not carried:
            result[band] = np.nan
            continue
        windowed = (segments - segments.mean(axis=1, keepdims=True)) * np.hanning(length)
        result[band] = float((np.abs(np.fft.rfft(windowed, axis=1)[:, chosen]) ** 2).mean())
    return result


def anisotropy_table(sources: list[str], out: Path) -> pd.DataFrame:
    """Per volume and anatomical direction, the band powers; per pair of directions, their ratio (see --parts)."""
    from isrnet.imageio import read_volume
    from isrnet.imageio.geometry import is_near_isotropic, slice_axis_of
    from isrnet.intensity import foreground_mask
    volumes = [(name, HR_SOURCES[name].role, high_resolution_file(name)) for name in sources]
    listed = {path for _, _, path in volumes}  # a real scan that is also a listed source (fslpy_t1) is measured once
    volumes += [(name, REAL_SCANS[name].role, path) for name in REAL_SCANS
                if (path := real_scan_file(name)) not in listed]
    rows = []
    for name, role, path in volumes:
        volume = read_volume(path)
        array = volume.array.astype(np.float64)
        mask = foreground_mask(volume.array.astype(np.float32))
        thick = None if is_near_isotropic(volume.spacing) else slice_axis_of(volume.spacing)
        power = {}
        for axis in range(3):
            direction = ANATOMY[int(np.argmax(np.abs(volume.direction[:, axis])))]
            power[direction] = (axis, axis_band_power(array, mask, axis, volume.spacing[axis]))
        for first, second in [(a, b) for i, a in enumerate(ANATOMY) for b in ANATOMY[i + 1:]]:
            (axis_a, a), (axis_b, b) = power[first], power[second]
            if thick in (axis_a, axis_b):
                continue  # a thick slice axis carries its profile: only axes of the acquired plane compare
            rows.append({"volume": name, "role": role, "pair": f"{first} / {second}",
                         **{f"ratio_{band}": a[band] / b[band] for band in BANDS},
                         "spacing_mm": "x".join(f"{s:g}" for s in volume.spacing)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "anisotropy.csv", index=False, float_format="%.4f")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("grid", "real", "cost", "hidden", "ssft", "anisotropy"),
                        default=["grid", "real"])
    parser.add_argument("--budget-minutes", type=float, default=2.0, help="ssft budget per arm and cell")
    parser.add_argument("--cost-of", choices=("wrong", "all"), default="wrong",
                        help="cells the cost part predicts: those whose decided width is wrong (default), or all")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/slice_profile"))
    add_sources_argument(parser, default=("deepmriprep", "pydeface_head", "colin27"))
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    grids = []
    for source in args.sources:
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        if "grid" in args.parts:
            grids.append(grid_table(source, folder))
        elif (folder / "grid.csv").is_file():
            grids.append(redecide(pd.read_csv(folder / "grid.csv")))
        if "cost" in args.parts:
            if not grids or grids[-1].source.iloc[0] != source:
                raise SystemExit(f"the cost part needs the grid of {source}: run --parts grid cost")
            cost = cost_table(source, grids[-1], folder, args.cost_of == "wrong")
            print(spread_summary(cost.melt(id_vars=["source"], value_vars=["cost_estimate_dB", "cost_decided_dB",
                                                                          "cost_spacing_dB"],
                                           var_name="width", value_name="cost_dB"), "width", "cost_dB", overall=False))
        if "ssft" in args.parts:
            comparison = ssft_comparison(high_resolution(source), args.budget_minutes, folder.resolve())
            comparison.to_csv(folder / "ssft_comparison.csv", index=False, float_format="%.4f")
            print(comparison.to_string(index=False, float_format="{:.2f}".format))
    if grids:
        grid = pd.concat(grids, ignore_index=True)
        grid.to_csv(out / "grid.csv", index=False, float_format="%.4f")
        print(summarise_grid(grid))
    if "real" in args.parts or (out / "real.csv").is_file():
        real = real_table(out) if "real" in args.parts else redecide(pd.read_csv(out / "real.csv"))
        print(real[["scan", "keep_every", "fwhm_mm", "spacing_mm", "gaussian_equivalent_mm", "estimated_fwhm_mm",
                    "confidence", "decided_mm", "decided_by", "right", "decided_right"]]
              .to_string(index=False, float_format="{:.2f}".format))
    if "anisotropy" in args.parts:
        table = anisotropy_table(list(args.sources), out)
        print(table.to_string(index=False, float_format="{:.2f}".format))
    if "hidden" in args.parts:
        hidden = hidden_cost_table(out.resolve())
        print(hidden.drop(columns=["decided_by"]).to_string(index=False, float_format="{:.2f}".format))
        print(f"the decided thickness against the best of the widths told: mean {hidden.cost_vs_best_dB.mean():.3f} "
              f"dB, worst {hidden.cost_vs_best_dB.max():.3f}; against the spacing: mean "
              f"{hidden.cost_vs_spacing_dB.mean():+.3f}, worst {hidden.cost_vs_spacing_dB.max():+.3f}")


if __name__ == "__main__":
    main()
