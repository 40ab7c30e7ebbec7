"""PSNR, the one formula: 10 log10(range^2 / MSE) in dB (used by validation during training and by the metrics)."""
from __future__ import annotations

import math


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB of a mean squared error at `data_range` (infinite for identical images, minus infinite for an
    error that is not finite: a diverged network)."""
    if not math.isfinite(mse):
        return -math.inf
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)
