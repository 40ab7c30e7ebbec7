"""QC figure of a fusion: the three orthogonal central views of every stack on the fused grid, and the result."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isrnet.utilities.files import save_figure

VIEW_NAMES = ("grid axis 0", "grid axis 1", "grid axis 2")


def _view(array: np.ndarray, axis: int) -> np.ndarray:
    return np.take(array, array.shape[axis] // 2, axis=axis)


def fusion_figure(result, path: Path) -> None:
    """Rows: each stack (registered, harmonised, on the grid), then the fused volume; columns: central planes
    across each grid axis. One grey window for all (the fused volume's 0.5-99.5 percentiles)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = {**{f"{name} (super-resolved)": array for name, array in result.on_grid.items()},
            "fused": result.volume.array}
    low, high = np.nanpercentile(result.volume.array, [0.5, 99.5])
    figure, axes = plt.subplots(len(rows), 3, figsize=(10, 3.2 * len(rows)), squeeze=False)
    for row, (title, array) in enumerate(rows.items()):
        for column in range(3):
            axis = axes[row][column]
            axis.imshow(np.nan_to_num(_view(array, column), nan=low), cmap="gray", vmin=low, vmax=high,
                        interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(title, fontsize=9)
            if row == 0:
                axis.set_title(f"plane across {VIEW_NAMES[column]}", fontsize=9)
    figure.suptitle(f"isr_fuse: reference {result.record['reference_stack']}, "
                    f"{result.volume.spacing[0]:g} mm grid {' x '.join(map(str, result.volume.shape))}")
    figure.tight_layout()
    save_figure(figure, path)
