"""Metrics (PSNR, SSIM on a foreground mask, matched by physical position), isr_evaluate, isr_benchmark.

Entry points: `run_benchmark(dataset, BenchmarkOptions(...))`, `evaluate_folders(reference, prediction)`.
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_benchmark": "benchmark_run", "BenchmarkOptions": "benchmark_run", "BenchmarkResult": "benchmark_run",
          "evaluate_folders": "evaluate", "write_results": "evaluate"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
