"""How well the slice profile is estimated from the data, and what the estimate does for ssft.

Material: each --sources high-resolution volume at 1 mm (default: deepmriprep's 0.5 mm template at 1 mm, the HR brain
mrft never trained on; sources.py names the training sources), slice axis superior-inferior.
- table: thickness/spacing {0.5, 0.8, 1, 1.25, 1.5} x factor {2, 3, 4, 6} x profile {gaussian, rect, trapezoid
  (not modelled by the estimator)} x {clean, Rician noise at SNR 25}. Per cell: the estimate, its error, and the
  fit within the true family. Scored where the FWHM is at least 2 in-plane voxels.
- ssft: on mismatched cells (thickness != spacing, or rect), the same budget of ssft with the estimated profile
  and with the old assumption (Gaussian, FWHM = spacing), each against the starting (shipped mrft) weights
  conditioned on the same thickness; PSNR against the 1 mm reference (isr_benchmark's metric). "not below start"
  allows 0.02 dB.
Usage: python benchmarks/slice_profile_estimation.py [--parts table ssft] [--budget-minutes 2]
       [--sources deepmriprep mni152 ...] [--out DIR]
Everything is written under --out/<source> (default ./benchmark_output/slice_profile); nothing touches your isrnet
folders. With several sources: the estimation summary per source, then the estimate's error per source (mean, worst,
spread).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ssft_mismatch_set.py beside this script

from isrnet.acquisition import simulate_thick_slices  # noqa: E402
from isrnet.acquisition.estimation import estimate_slice_profile  # noqa: E402
from isrnet.errors import IsrnetError  # noqa: E402
from sources import add_sources_argument, high_resolution, spread_summary  # noqa: E402
from ssft_mismatch_set import rician_noise  # noqa: E402

RATIOS = (0.5, 0.8, 1.0, 1.25, 1.5)
FACTORS = (2, 3, 4, 6)
FAMILIES = ("gaussian", "rect", "trapezoid")
SNRS = (None, 25.0)
TOLERANCE = 0.15
# mismatched cells for the ssft comparison: (family, factor, thickness / spacing)
SSFT_CELLS = (("gaussian", 4, 0.5), ("rect", 4, 1.0), ("gaussian", 4, 1.5), ("trapezoid", 3, 0.8))


def acquire(fine: np.ndarray, family: str, factor: int, ratio: float, snr: float | None,
            rng: np.random.Generator) -> np.ndarray:
    """Thick slices every `factor` mm with FWHM ratio * factor mm, with Rician noise at `snr` if given."""
    low = simulate_thick_slices(fine, 0, float(factor), ratio * factor, family)[0]
    return rician_noise(low, snr, rng) if snr else low


def estimation_table(fine: np.ndarray) -> pd.DataFrame:
    rows, rng = [], np.random.default_rng(0)
    cells = [(s, fam, f, r) for s in SNRS for fam in FAMILIES for f in FACTORS for r in RATIOS]
    for index, (snr, family, factor, ratio) in enumerate(cells):
        truth = ratio * factor
        started = time.time()
        try:
            found = estimate_slice_profile(acquire(fine, family, factor, ratio, snr, rng), (float(factor), 1.0, 1.0))
        except IsrnetError as error:  # a small source at a large factor: what planning would also refuse
            print(f"[{index + 1}/{len(cells)}] {family} x{factor} T/S {ratio:g}: not estimated ({error})", flush=True)
            continue
        own = found.fits_mm.get(family)
        rows.append({"snr": snr or "clean", "family": family, "factor": factor, "ratio": ratio, "fwhm_mm": truth,
                     "scored": truth >= 2.0, "estimated_family": found.family, "estimated_fwhm_mm": found.fwhm_mm,
                     "error_pct": 100 * (found.fwhm_mm / truth - 1), "confidence": found.confidence,
                     "family_margin": found.family_margin,
                     "gaussian_fit_mm": found.fits_mm["gaussian"], "rect_fit_mm": found.fits_mm["rect"],
                     "true_family_fit_error_pct": None if own is None else 100 * (own / truth - 1),
                     "seconds": time.time() - started})
        print(f"[{index + 1}/{len(cells)}] {family} x{factor} T/S {ratio:g} SNR {snr or 'clean'}: "
              f"{found.family} {found.fwhm_mm:.2f} mm (truth {truth:g}, {rows[-1]['error_pct']:+.0f} %)", flush=True)
    table = pd.DataFrame(rows)
    table["right"] = (table.estimated_family == table.family) & (table.error_pct.abs() <= 100 * TOLERANCE)
    table["width_right_in_true_family"] = table.true_family_fit_error_pct.abs() <= 100 * TOLERANCE
    return table


def _counts(values: pd.Series) -> str:
    return ", ".join(f"{name} {count}" for name, count in values.value_counts().items())


def summarise_table(table: pd.DataFrame) -> str:
    lines = []
    for snr, part in table[table.scored].groupby("snr", sort=False):
        modelled = part[part.family != "trapezoid"]
        lines.append(f"SNR {snr}: Gaussian/rect cells with FWHM >= 2 voxels: family and FWHM (+-15 %) right in "
                     f"{int(modelled.right.sum())}/{len(modelled)}; FWHM right within the true family in "
                     f"{int(modelled.width_right_in_true_family.sum())}/{len(modelled)}")
        for family, rows in modelled.groupby("family"):
            lines.append(f"  {family}: right {int(rows.right.sum())}/{len(rows)}, median |FWHM error| "
                         f"{rows.error_pct.abs().median():.0f} % (estimated family {_counts(rows.estimated_family)})")
        trapezoid = part[part.family == "trapezoid"]
        lines.append(f"  trapezoid: nearest family {_counts(trapezoid.estimated_family)}, FWHM error "
                     f"median {trapezoid.error_pct.median():+.0f} % (range {trapezoid.error_pct.min():+.0f} to "
                     f"{trapezoid.error_pct.max():+.0f} %)")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("table", "ssft"), default=["table", "ssft"])
    parser.add_argument("--budget-minutes", type=float, default=2.0, help="ssft budget per arm and cell")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/slice_profile"))
    add_sources_argument(parser)
    args = parser.parse_args()
    tables = []
    for source in args.sources:
        out = args.out / source
        out.mkdir(parents=True, exist_ok=True)
        print(f"== source {source}", flush=True)
        fine = high_resolution(source)
        if "table" in args.parts:
            table = estimation_table(fine)
            table.insert(0, "source", source)
            table.to_csv(out / "estimation.csv", index=False, float_format="%.4f")
            print(table.drop(columns=["seconds"]).to_string(index=False, float_format="{:.2f}".format))
            print(summarise_table(table))
            print(f"median {table.seconds.median():.1f} s per volume")
            tables.append(table)
        if "ssft" in args.parts:
            comparison = ssft_comparison(fine, args.budget_minutes, out.resolve())
            comparison.to_csv(out / "ssft_comparison.csv", index=False, float_format="%.4f")
            print(comparison.to_string(index=False, float_format="{:.2f}".format))
            print(f"estimated beats old in {int(comparison.estimated_beats_old.sum())}/{len(comparison)} cells; "
                  f"never below its start in {int(comparison.estimated_not_below_start.sum())}/{len(comparison)}")
    if len(tables) > 1:
        scored = pd.concat(tables, ignore_index=True)
        scored = scored[scored.scored & (scored.family != "trapezoid")]
        print("\nFWHM error of the estimate (%) per source, Gaussian/rect cells:")
        print(spread_summary(scored.assign(abs_error_pct=scored.error_pct.abs()), "source", "abs_error_pct"))


if __name__ == "__main__":
    main()
