"""QC figure: one through-plane slice of input / cubic / isrnet / reference, with error maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet.evaluation.metrics import on_reference_grid
from isrnet.imageio.volume import Volume
from isrnet.utilities.files import save_figure


def through_plane(array: np.ndarray, slice_axis: int) -> np.ndarray:
    """The central plane containing the slice axis (vertical in the figure)."""
    other = [a for a in range(3) if a != slice_axis]
    plane = np.take(array, array.shape[other[0]] // 2, axis=other[0])
    return plane if slice_axis < other[1] else plane.T


def qc_figure(reference: Volume, panels: dict[str, Volume], slice_axis: int, path: Path, title: str) -> None:
    """Top row: images on the reference grid; bottom row: |image - reference| (same scale for all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = through_plane(reference.array.astype(np.float32), slice_axis)
    images = {name: through_plane(on_reference_grid(volume, reference), slice_axis) for name, volume in panels.items()}
    vmax = float(np.percentile(truth, 99.5))
    error_max = 0.25 * vmax
    columns = len(images) + 1
    origin = "lower" if reference.direction[2, slice_axis] > 0 else "upper"  # superior at the top
    aspect = reference.spacing[slice_axis] / min(s for i, s in enumerate(reference.spacing) if i != slice_axis)
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.6), squeeze=False, layout="constrained")
    for column, (name, image) in enumerate(list(images.items()) + [("reference", truth)]):
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=vmax, aspect=aspect, interpolation="nearest",
                                origin=origin)
        axes[0, column].set_title(name, fontsize=10)
        if name != "reference":
            error = np.abs(np.nan_to_num(image) - truth)
            shown = axes[1, column].imshow(error, cmap="magma", vmin=0, vmax=error_max, aspect=aspect,
                                           interpolation="nearest", origin=origin)
            axes[1, column].set_title(f"|error|, mean {np.nanmean(error):.3g}", fontsize=9)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    axes[1, -1].axis("off")  # under the reference: the colour bar, so every panel keeps the same size
    figure.colorbar(shown, cax=axes[1, -1].inset_axes([0.05, 0.05, 0.07, 0.9]), label="absolute error")
    figure.suptitle(title + " (through-plane view, slice axis vertical)")
    save_figure(figure, path, dpi=100)
