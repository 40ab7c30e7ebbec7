"""progress.png: training loss and validation PSNR (model vs cubic) against iterations."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet.utilities.files import save_figure


def plot_progress(history: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(11, 4))
    losses = np.asarray(history["loss"], dtype=float)
    if losses.size:
        window = max(1, losses.size // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        loss_axis.plot(np.arange(losses.size), losses, color="0.8", lw=0.5, label="loss")
        loss_axis.plot(np.arange(smooth.size) + window - 1, smooth, color="C0", label=f"mean of {window}")
        loss_axis.set_yscale("log")
    loss_axis.set(xlabel="iteration", ylabel="L1 loss (normalised intensity)", title="training loss")
    loss_axis.legend()
    validation = history["validation"]
    if validation:
        its = [v["iteration"] for v in validation]
        psnr_axis.plot(its, [v["psnr"] for v in validation], "o-", color="C1", label="network")
        psnr_axis.plot(its, [v["psnr_cubic"] for v in validation], "--", color="0.4", label="cubic")
    psnr_axis.set(xlabel="iteration", ylabel="PSNR (dB, range 1)", title="validation (held-out pairs)")
    psnr_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path, dpi=90)
