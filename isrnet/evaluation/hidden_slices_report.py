"""The hidden-slice evaluation's report: gains over the best classic, per-method summary, text, figures, page."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from isrnet.evaluation.hidden_slices import FWHM_GRID, MAX_FWHM, SAMPLES_PER_SLICE, ThinnedCase, ordinal
from isrnet.utilities.files import atomic_write_text, save_figure


def add_gains(table: pd.DataFrame) -> pd.DataFrame:
    """Each case's best classic PSNR, every method's gain over it, and the case's winner."""
    classic = table[table.role == "classic"]
    best = classic.loc[classic.groupby("case", sort=False)["psnr"].idxmax()].set_index("case")
    table = table.copy()
    table["best_classic"] = table.case.map(best["method"])
    table["gain_vs_best_classic_dB"] = table.psnr - table.case.map(best["psnr"])
    fair = table[table.role != "full_scans"]
    winners = fair.loc[fair.groupby("case", sort=False)["psnr"].idxmax()].set_index("case")["method"]
    table["wins_case"] = table.method == table.case.map(winners)
    return table


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean PSNR, mean / worst / spread of the gain over the best classic, cases won."""
    grouped = table.groupby("method", sort=False)
    summary = pd.DataFrame({
        "role": grouped.role.first(), "cases": grouped.size(), "psnr": grouped.psnr.mean(),
        "gain_mean_dB": grouped.gain_vs_best_classic_dB.mean(), "gain_worst_dB": grouped.gain_vs_best_classic_dB.min(),
        "gain_best_dB": grouped.gain_vs_best_classic_dB.max(),
        "gain_spread_dB": grouped.gain_vs_best_classic_dB.std(ddof=0), "wins": grouped.wins_case.sum(),
        "fwhm_spacings_mean": grouped.fwhm_spacings.mean(), "fwhm_on_edge": grouped.fwhm_on_edge.sum(),
        "ssim": grouped.ssim.mean(), "seconds": grouped.seconds.mean()})
    summary.index.name = "method"
    return summary


def terminal_text(table: pd.DataFrame, summary: pd.DataFrame, keep_every: int) -> str:
    per_case = table.pivot_table(index="case", columns="method", values="psnr", sort=False)
    lines = [f"hidden-slice evaluation: every {ordinal(keep_every)} real slice kept, the removed real slices predicted "
             "and "
             f"compared inside the head (PSNR at each method's best blur width, 0-{MAX_FWHM:g} x the slice "
             f"spacing); baseline: each case's best classic interpolant",
             f"note: the network worked at {keep_every} x the scans' own factor, with a gap (thickness about "
             f"1/{keep_every} of the spacing): this ranks methods on these scans, it is not the score at their own "
             f"factor", "", "PSNR per case (dB):", per_case.to_string(float_format="{:.2f}".format), ""]
    shown = pd.DataFrame({"cases": summary.cases, "PSNR": summary.psnr.map("{:.2f}".format),
                          "gain mean": summary.gain_mean_dB.map("{:+.2f}".format),
                          "worst": summary.gain_worst_dB.map("{:+.2f}".format),
                          "spread": summary.gain_spread_dB.map("{:.2f}".format), "wins": summary.wins,
                          "best FWHM (x spacing)": summary.fwhm_spacings_mean.map("{:.2f}".format)})
    shown.index.name = None
    lines += [f"over {per_case.shape[0]} case(s), gain over the best classic (dB):", shown.to_string()]
    edge = table[table.fwhm_on_edge]
    if len(edge):
        lines.append("best blur width on the grid's edge (0 or the maximum; widen the search before trusting these): "
                     + "; ".join(f"{r.case} / {r.method} at {r.fwhm_spacings:g}x" for r in edge.itertuples()))
    if (table.role == "full_scans").any():
        lines.append("runs marked 'trained on the full scans' have seen the removed slices: not comparable")
    return "\n".join(lines)


def markdown(table: pd.DataFrame, summary: pd.DataFrame) -> tuple[str, str]:
    """(the per-method table, the per-case table) in Markdown."""
    header = ("| method | cases | PSNR (dB) | gain vs best classic: mean | worst | best | spread | wins | best FWHM "
              "(x spacing) | SSIM |\n|---|---|---|---|---|---|---|---|---|---|\n")
    rows = "".join(f"| {m} | {r.cases} | {r.psnr:.2f} | {r.gain_mean_dB:+.2f} | {r.gain_worst_dB:+.2f} | "
                   f"{r.gain_best_dB:+.2f} | {r.gain_spread_dB:.2f} | {r.wins} | {r.fwhm_spacings_mean:.2f} | "
                   f"{r.ssim:.4f} |\n" for m, r in summary.iterrows())
    cases = ("| case | method | PSNR (dB) | gain (dB) | best FWHM (mm) | thickness (mm, source) |\n"
             "|---|---|---|---|---|---|\n" + "".join(
                 f"| {r.case} | {r.method} | {r.psnr:.2f} | {r.gain_vs_best_classic_dB:+.2f} | {r.fwhm_mm:.2f}"
                 f"{' (edge)' if r.fwhm_on_edge else ''} | {r.thickness_mm:g} ({r.thickness_source}) |\n"
                 for r in table.itertuples()))
    return header + rows, cases


def qc_figure(case: ThinnedCase, estimates: dict[str, np.ndarray], path: Path, title: str) -> None:
    """One removed slice: its truth, the best classic and isrnet at their best widths, with error maps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    index = int(np.argmax(case.mask.reshape(len(case.removed), -1).sum(axis=1)))
    truth = case.truth[index]
    vmax = float(np.percentile(truth[case.mask[index]], 99.5))
    figure, axes = plt.subplots(2, len(estimates) + 1, figsize=(3.2 * (len(estimates) + 1), 6.6), squeeze=False,
                                layout="constrained")
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title(f"truth: removed slice {case.removed[index]}", fontsize=10)
    axes[1, 0].axis("off")
    for column, (label, estimate) in enumerate(estimates.items(), start=1):
        image = estimate[index]
        error = np.abs(image - truth)
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        axes[0, column].set_title(label, fontsize=9)
        shown = axes[1, column].imshow(error, cmap="magma", vmin=0, vmax=0.25 * vmax)
        axes[1, column].set_title(f"|error|, mean in head {error[case.mask[index]].mean():.3g}", fontsize=9)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(shown, ax=axes[1, -1], label="absolute error", shrink=0.8)
    figure.suptitle(title)
    save_figure(figure, path, dpi=100)


def blur_search_figure(curves: pd.DataFrame, path: Path) -> None:
    """PSNR against blur width per method, one panel per case: where each method's best width lies."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(curves.case))
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(6.5, 4.5 * columns), 3.6 * rows), squeeze=False,
                                layout="constrained")
    for axis, name in zip(axes.ravel(), names):
        for method, part in curves[curves.case == name].groupby("method", sort=False):
            axis.plot(part.fwhm_spacings, part.psnr, marker=".", label=textwrap.fill(method, 40))
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("blur FWHM (x slice spacing)")
        axis.set_ylabel("PSNR (dB)")
    for axis in axes.ravel()[len(names):]:
        axis.axis("off")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle("hidden slices: PSNR against the blur width")
    save_figure(figure, path, dpi=100)


def qc_panels(estimates: dict[str, tuple[str, float, np.ndarray]]) -> dict[str, np.ndarray]:
    """The best classic and the best isrnet method that never saw the removed slices."""
    classic = {k: v for k, v in estimates.items() if v[0] == "classic"}
    network = {k: v for k, v in estimates.items() if v[0] not in ("classic", "full_scans")}
    panels = {}
    for group, prefix in ((classic, "best classic"), (network, "best isrnet")):
        if group:
            label = max(group, key=lambda k: group[k][1])
            wrapped = textwrap.fill(label.removeprefix("isrnet "), 34)
            panels[f"{prefix} ({group[label][1]:.2f} dB):\n{wrapped}"] = group[label][2]
    return panels


def write_page(folder: Path, source: str, table: pd.DataFrame, summary: pd.DataFrame, figures: list[Path],
               text: str, keep_every: int, training: str) -> Path:
    """hidden_slices.md: the method, what the score means, the tables, the figures and the printed text;
    `training` says what ssft and adaptation did."""
    overall, per_case = markdown(table, summary)
    lines = [f"# Hidden-slice evaluation of {source}", "",
             f"Every {ordinal(keep_every)} real slice was kept; every method predicted the removed real slices from "
             f"the kept ones; the prediction was read as a continuous signal along the slice axis, blurred with the "
             f"Gaussian (FWHM 0 to {MAX_FWHM:g} x the slice spacing, steps of {FWHM_GRID[1]:g}) that suits the "
             f"method best on that case, and compared with the truth inside the head (PSNR). The baseline of each "
             f"case is its best classic interpolant. Methods were sampled at {SAMPLES_PER_SLICE} output slices per "
             f"scan slice.", "",
             f"The network worked at {keep_every} x the scans' own factor and with a gap (slice thickness about "
             f"1/{keep_every} of the thinned spacing): the score ranks methods on these scans, it is not the score "
             f"at their own factor.", "", training, "",
             "## Over all cases", "", overall, "## Per case", "", per_case, "## Figures", "",
             "![blur search](blur_search.png)", ""]
    lines += [f"![{figure.stem}]({figure.name})" for figure in figures]
    lines += ["", "## As printed", "", "```", text, "```", ""]
    page = folder / "hidden_slices.md"
    atomic_write_text("\n".join(lines), page)
    return page
