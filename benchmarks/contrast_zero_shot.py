"""Zero-shot gain over cubic on contrasts unlike T1: how contrast-agnostic are the pre-trained mrft weights?

Material: each --sources high-resolution T1 at 1 mm (default: deepmriprep's brain template, which mrft never trained
on; see sources.py for which sources are training material), Gaussian 4 mm slices every 4 mm (the demo's
acquisition), in six contrasts made from its T1 by mappings that training does *not* use (decided before training: mrft's contrast randomisation draws random piecewise-linear curves over the whole intensity range,
never these tissue-class mappings):
  t1        the template itself
  inverted  1.1 x max - T1 inside the brain (every tissue order reversed, CSF brightest)
  t2like    CSF 1.0 > grey matter 0.6 > white matter 0.35, linear between the classes' mean T1 intensities
  pdlike    CSF 0.8 > grey 0.7 > white 0.6: a flat, low-contrast ordering
  flairlike grey 0.9 > white 0.6 > CSF 0.15: fluid suppressed, grey above white (added 2026-12-03)
  greybright grey 1.0 > CSF 0.5 > white 0.2: a non-monotone ordering of the T1 classes (added 2026-12-03)
Tissue classes: three-class Otsu thresholds of the T1 inside the brain. Each weights file predicts each contrast
as `isr_predict` with no dataset does (thickness estimated from the input); score: PSNR over synthesised slices
in the head, minus cubic's. Ratio = a contrast's gain / the T1 gain of the same weights (target >= 0.85).
--real-scans: the same mappings applied to real anisotropic scans of sources.py (their own classes; the "brain" is
the filled foreground, so on a head scan skin, fat and skull are remapped too), each scored by the hidden-slice
evaluation (every 2nd real slice hidden and predicted; no ssft): gain over the best classic interpolant on the removed
real slices, and its ratio to the same weights' gain on the scan as acquired (about 5 s per scan, mapping and weights).
Beside it, mapped_t1_prediction_gain: the weights' prediction of the T1 scan remapped with the same curve, scored the
same way: what weights indifferent to contrast would gain (see mapped_t1_prediction); the --sources tables have the
same column (the T1 prediction remapped and scored against the mapped reference).
--order: a real scan can only be remapped after its acquisition, so its thick slices' partial-volume averages are
mapped too (not what a scanner does). For each --sources, the simulated acquisition scored by hidden slices with
each mapping applied before it and after it tells how much of the real-scan ratios that order costs.
Usage: python benchmarks/contrast_zero_shot.py [--weights A.pth B.pth ...] [--sources deepmriprep mni152 ...]
       [--real-scans pyradiomics_brain1 ...] [--order] [--figure FILE.png]
       (default: the shipped mrft weights; about 40 s per weights file and source on 2 CPU cores). With several
       sources: the ratios per source, and their mean, worst and spread.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from isrnet.acquisition import simulate_thick_slices  # noqa: E402
from isrnet.imageio import Volume  # noqa: E402
from sources import (REAL_SCANS, add_sources_argument, high_resolution, real_scan_file, role_of,  # noqa: E402
                     spread_summary)

SPACING = 4.0
MAPPINGS = ("t1", "inverted", "t2like", "pdlike", "flairlike", "greybright")
CLASS_LEVELS = {"t2like": (1.0, 0.6, 0.35), "pdlike": (0.8, 0.7, 0.6), "flairlike": (0.15, 0.9, 0.6),
                "greybright": (0.5, 1.0, 0.2)}  # CSF, grey, white matter


def contrast_curve(t1: np.ndarray, mapping: str) -> Callable[[np.ndarray], np.ndarray]:
    """The mapping's intensity curve, its knots read off the T1 `t1` (its three classes inside the filled
    foreground); applied to an array of the same T1 intensities (the T1 itself, or a prediction of it), it remaps
    the filled foreground and sets the rest to 0."""
    from skimage.filters import threshold_multiotsu
    top = float(t1.max())

    def inside(array: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.where(ndimage.binary_fill_holes(array > 0.05 * top), values, 0.0).astype(np.float32)

    if mapping == "t1":
        return lambda array: array
    if mapping == "inverted":
        return lambda array: inside(array, 1.1 * top - array)
    brain = ndimage.binary_fill_holes(t1 > 0.05 * top)
    low, high = threshold_multiotsu(t1[brain], classes=3)
    values = t1[brain]
    means = [values[values < low].mean(), values[(values >= low) & (values < high)].mean(), values[values >= high].mean()]
    levels = np.array(CLASS_LEVELS[mapping]) * top
    return lambda array: inside(array, np.interp(array, [0.0, *means, top], [0.0, *levels, levels[-1]]))


def contrast(t1: np.ndarray, mapping: str) -> np.ndarray:
    """The 1 mm T1 remapped to `mapping` (background stays 0)."""
    return contrast_curve(t1, mapping)(t1)


def acquisition(fine: np.ndarray) -> tuple[Volume, Volume]:
    keep = int((fine.shape[0] - 1) // SPACING * SPACING) + 1
    fine = fine[:keep]
    low = simulate_thick_slices(fine, 0, SPACING, SPACING, "gaussian")[0]
    return Volume(low.astype(np.float32), (SPACING, 1.0, 1.0)), Volume(fine, (1.0, 1.0, 1.0))


def evaluate(weights: list[Path], source: str = "deepmriprep") -> tuple[pd.DataFrame, dict]:
    from isrnet.evaluation.baselines import classic_upsample
    from isrnet.evaluation.metrics import compare
    from isrnet.imageio.geometry import input_slice_positions
    from isrnet.inference import Predictor
    t1 = high_resolution(source)
    cases = {mapping: acquisition(contrast(t1, mapping)) for mapping in MAPPINGS}
    predictors = {path: Predictor.from_checkpoint(path) for path in weights}
    rows, examples, t1_outputs = [], {}, {}
    for mapping, (low, reference) in cases.items():  # "t1" first
        positions = input_slice_positions(low, 0)
        cubic = compare(classic_upsample(low, SPACING, 0, "cubic B-spline"), reference, 0, positions)["psnr_synth"]
        curve = contrast_curve(t1, mapping)
        for path, predictor in predictors.items():
            result = predictor.run(low)
            output, profile = result.volume, result.slice_profile
            t1_outputs.setdefault(path, output)
            psnr = compare(output, reference, 0, positions)["psnr_synth"]
            mapped_t1 = compare(t1_outputs[path].with_array(curve(t1_outputs[path].array)), reference, 0,
                                positions)["psnr_synth"]
            rows.append({"source": source, "weights": str(path), "contrast": mapping, "cubic": cubic, "isrnet": psnr,
                         "gain": psnr - cubic, "thickness_mm": profile.thickness_mm,
                         "mapped_t1_prediction_gain": mapped_t1 - cubic})
            examples[(str(path), mapping)] = (low, output, reference)
    table = pd.DataFrame(rows)
    t1_gain = table[table.contrast == "t1"].set_index("weights").gain
    table["ratio_to_t1"] = table.gain / table.weights.map(t1_gain)
    return table, examples


def hidden_slice_table(weights: list[Path], label: str, mapped: dict[str, Volume], folder: Path) -> pd.DataFrame:
    """Each mapping's volume in `mapped` scored by the hidden-slice evaluation without ssft: gain of each weights over
    the best classic interpolant on the removed slices, and its ratio to the T1 gain of the same weights."""
    from isrnet.benchmarking import HiddenSliceOptions, run_hidden_slices
    from isrnet.imageio import write_volume
    rows = []
    for mapping, volume in mapped.items():
        write_volume(volume, folder / mapping / "input" / f"{folder.name}_{mapping}.nii.gz")
        for path in weights:
            result = run_hidden_slices(folder / mapping / "input", HiddenSliceOptions(
                ssft=False, weights=path, output=folder / mapping / Path(path).stem))
            row = result.table[result.table.role == "pretrained"].iloc[0]
            rows.append({"source": label, "weights": str(path), "contrast": mapping, "best_classic": row.best_classic,
                         "isrnet": row.psnr, "gain": row.gain_vs_best_classic_dB, "thickness_mm": row.thickness_mm})
    table = pd.DataFrame(rows)
    t1_gain = table[table.contrast == "t1"].set_index("weights").gain
    table["ratio_to_t1"] = table.gain / table.weights.map(t1_gain)
    return table


def evaluate_real(weights: list[Path], scan: str, out: Path) -> pd.DataFrame:
    """Each mapping of the real scan `scan` (same geometry) by `hidden_slice_table`, with the control
    `mapped_t1_prediction_gain` beside it."""
    from isrnet.imageio import read_volume
    volume = read_volume(real_scan_file(scan))
    original = np.clip(volume.array.astype(np.float32), 0.0, None)
    mapped = {mapping: volume.with_array(contrast(original, mapping)) for mapping in MAPPINGS}
    table = hidden_slice_table(weights, f"{scan} (hidden slices)", mapped, out / scan)
    for path in weights:
        rows_of = table.weights == str(path)
        thickness = float(table[rows_of & (table.contrast == "t1")].thickness_mm.iloc[0])
        oracle = mapped_t1_prediction(path, volume.with_array(original), thickness)
        classic = table[rows_of].isrnet - table[rows_of].gain
        table.loc[rows_of, "mapped_t1_prediction_gain"] = table[rows_of].contrast.map(oracle) - classic
    return table


def evaluate_order(weights: list[Path], source: str, out: Path) -> pd.DataFrame:
    """What the real-scan yardstick's order costs: the source's simulated acquisition (`acquisition`) with each
    mapping applied before it (as a scanner makes a contrast: the mapped tissue is then averaged over the slice) and
    after it (as --real-scans maps an acquired scan: the averaged intensities are then mapped), both scored by the
    hidden-slice evaluation."""
    t1 = high_resolution(source)
    acquired_t1 = acquisition(t1)[0]
    before = {mapping: acquisition(contrast(t1, mapping))[0] for mapping in MAPPINGS}
    after = {mapping: acquired_t1.with_array(contrast(acquired_t1.array, mapping)) for mapping in MAPPINGS}
    label = f"{source} (simulated, hidden slices, mapped {{}} acquisition)"
    return pd.concat([hidden_slice_table(weights, label.format("before"), before, out / f"{source}_before"),
                      hidden_slice_table(weights, label.format("after"), after, out / f"{source}_after")],
                     ignore_index=True)


def mapped_t1_prediction(weights: Path, t1: Volume, thickness_mm: float) -> dict[str, float]:
    """Per mapping: the hidden-slice PSNR of the weights' prediction *of the T1 scan* remapped by the mapping's curve,
    against the mapped scan's removed slices. What weights that commute with the mapping would score, so the mapped
    scan's gain over its classic interpolants, set beside this one, separates the weights' contrast dependence from
    what the mapping itself does to the task."""
    from isrnet.benchmarking.hidden_slices_run import predict_thinned
    from isrnet.evaluation.hidden_slices import hidden_slice_axis, score_output, thin_case
    from isrnet.inference import Predictor
    axis = hidden_slice_axis(t1.spacing)
    output = predict_thinned(Predictor.from_checkpoint(weights), thin_case("t1", t1, axis), thickness_mm)
    scores = {}
    for mapping in MAPPINGS:
        curve = contrast_curve(t1.array, mapping)
        mapped_case = thin_case(mapping, t1.with_array(curve(t1.array)), axis)
        scores[mapping] = score_output(mapped_case, output.with_array(curve(output.array))).psnr
    return scores


def figure(examples: dict, weights: str, mapping: str, path: Path) -> None:
    """Coronal views (across the slices) of input, output and reference for one contrast."""
    from isrnet.utilities.files import save_figure
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    low, output, reference = examples[(weights, mapping)]
    row = reference.shape[1] // 2
    views = {"input (4 mm, nearest)": np.repeat(low.array[:, row], int(SPACING), axis=0),
             "isrnet": output.array[:, row], "1 mm reference": reference.array[:, row]}
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2))
    top = np.percentile(reference.array, 99.5)
    for axis, (title, image) in zip(axes, views.items()):
        axis.imshow(image[::-1], cmap="gray", vmin=0, vmax=top, aspect="auto")
        axis.set_title(title)
        axis.axis("off")
    fig.suptitle(f"zero-shot on the {mapping} contrast ({Path(weights).name})")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    from isrnet.pretrained import shipped_weights
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", type=Path, default=None, help="checkpoints (default: shipped mrft)")
    parser.add_argument("--figure", type=Path, help="write a QC figure of the t2like case of the first weights")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    parser.add_argument("--real-scans", nargs="+", choices=list(REAL_SCANS), default=[],
                        help="also these real scans, judged on their hidden slices")
    parser.add_argument("--order", action="store_true",
                        help="also score each --sources acquisition by hidden slices, mapped before and after it")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/contrast_zero_shot"),
                        help="where the real scans' hidden-slice evaluations are written")
    add_sources_argument(parser)
    args = parser.parse_args()
    weights = args.weights or [shipped_weights("mrft")]
    parts = [evaluate(weights, source) for source in args.sources]
    real = [evaluate_real(weights, scan, args.out.resolve()) for scan in args.real_scans]
    order = [evaluate_order(weights, source, args.out.resolve()) for source in args.sources] if args.order else []
    table = pd.concat([part[0] for part in parts] + real + order, ignore_index=True)
    examples = parts[0][1] if parts else {}
    print(table.to_string(index=False, float_format="{:.2f}".format))
    for (source, path), part in table.groupby(["source", "weights"], sort=False):
        others = part[part.contrast != "t1"]
        print(f"{source} ({role_of(source)}), {path}: T1 gain {part[part.contrast == 't1'].gain.iloc[0]:+.2f} "
              f"dB; non-T1 gain / T1 gain: " + ", ".join(f"{r.contrast} {r.ratio_to_t1:.2f}" for r in others.itertuples())
              + f" (target >= 0.85: {int((others.ratio_to_t1 >= 0.85).sum())}/{len(others)})")
    for path, part in table[table.contrast != "t1"].groupby("weights", sort=False):
        print(f"\n{path}: non-T1 gain / T1 gain per source:\n{spread_summary(part, 'source', 'ratio_to_t1')}")
        print(f"{path}: gain over cubic (dB) per source, every contrast:\n{spread_summary(table[table.weights == path], 'source', 'gain')}")
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.4f")
    if args.figure and examples:
        figure(examples, str(weights[0]), "t2like", args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
