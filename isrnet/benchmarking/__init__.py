"""isr_benchmark: what a benchmark runs and trains (classic interpolation, each stage's weights, the supervised upper
bound, the ablation arms, ssft on thinned real scans) and its tables; `evaluation/` holds what it measures with.

Entry points: `run_benchmark(dataset, BenchmarkOptions(...))` (against references), `run_hidden_slices(dataset or
Path, HiddenSliceOptions(...))` (real scans, no reference).
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_benchmark": "benchmark_run", "BenchmarkOptions": "benchmark_run", "BenchmarkResult": "benchmark_run",
          "run_hidden_slices": "hidden_slices_run", "HiddenSliceOptions": "hidden_slices_run",
          "HiddenSliceResult": "hidden_slices_run"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
