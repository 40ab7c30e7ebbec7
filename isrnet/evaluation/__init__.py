"""Metrics (PSNR, SSIM on a foreground mask, matched by physical position), isr_evaluate, isr_benchmark.

Entry points: `run_benchmark(dataset, BenchmarkOptions(...))`, `evaluate_folders(reference, prediction)`,
`run_hidden_slices(dataset or Path, HiddenSliceOptions(...))` (real scans, no reference).
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_benchmark": "benchmark_run", "BenchmarkOptions": "benchmark_run", "BenchmarkResult": "benchmark_run",
          "evaluate_folders": "evaluate", "write_results": "evaluate", "run_hidden_slices": "hidden_slices_run",
          "HiddenSliceOptions": "hidden_slices_run", "HiddenSliceResult": "hidden_slices_run"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
