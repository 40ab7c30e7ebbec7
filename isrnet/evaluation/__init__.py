"""Measuring: metrics (PSNR, SSIM on a foreground mask, matched by physical position), isr_evaluate, the classic
interpolants, hidden-slice scoring, and the benchmark's tables, figures and pages. What a benchmark runs and trains
lives in `benchmarking/`.

Entry points: `evaluate_folders(reference, prediction)`, `write_results(table, output)`.
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"evaluate_folders": "evaluate", "write_results": "evaluate"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
