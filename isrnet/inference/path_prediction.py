"""The prediction entry point: `predict_paths(inputs, output, model, options)` (what `isr_predict` calls).

    from isrnet.inference import PredictOptions, predict_paths
    results = predict_paths("scans/", "sr/", "results/Dataset001_DemoBrain/ssft", PredictOptions(processes=2))

Cases are independent: `num_parts`/`part_id` split them across nodes or jobs (every case exactly once) and
`processes` runs a pool on one machine — existing engines, no scheduler of our own. Per-case settings come
from the model's plans (see Predictor.settings_for); every output gets a JSON sidecar.
"""
from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from isrnet.errors import IsrnetError
from isrnet.inference.model_resolution import Model, as_model
from isrnet.inference.outputs import OutputFormat, check_not_an_input
from isrnet.inference.predict_files import find_inputs, part_of, predict_file
from isrnet.inference.predictor import PredictionSettings, Predictor
from isrnet.training.adaptation import AdaptationOptions
from isrnet.utilities.device import check_amp, resolve_device
from isrnet.utilities.progress import progress, stderr_is_terminal, write


@dataclass
class PredictOptions:
    settings: PredictionSettings = field(default_factory=PredictionSettings)
    dtype: str | None = None  # output voxel type (default float32)
    device: str = "cpu"
    processes: int = 1  # cases in parallel on this machine
    num_parts: int = 1  # split the inputs into this many parts ...
    part_id: int = 0  # ... and do this one (0-based)
    output: OutputFormat = field(default_factory=OutputFormat)  # NIfTI or a derived DICOM series
    amp: bool = False  # float16 autocast on CUDA
    adaptation: AdaptationOptions = field(default_factory=AdaptationOptions)  # per-case fine-tuning (off)


@dataclass
class CaseResult:
    source: Path
    output: Path | None  # None when the case failed
    message: str | None = None  # a warning or the error

    @property
    def failed(self) -> bool:
        return self.output is None


_predictor: Predictor | None = None  # one per process (the pool's initializer loads it)


def _load_predictor(model: Model, device: str, threads: int, amp: bool = False) -> None:
    import torch
    global _predictor
    torch.set_num_threads(threads)
    _predictor = Predictor.from_model(model, device, amp)


def _predict_one(task: tuple) -> CaseResult:
    source, output, settings, dtype, on_gap, output_format, adaptation = task
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            target = predict_file(_predictor, source, output, settings, dtype, on_gap, output_format, adaptation)
        notes = "; ".join(dict.fromkeys(str(w.message) for w in caught))  # a time series warns once per frame
        return CaseResult(source, target, f"warning: {notes}" if notes else None)
    except IsrnetError as error:
        return CaseResult(source, None, f"error: {error}")


def _adapting(adaptation: AdaptationOptions) -> str:
    if not adaptation.enabled:
        return ""
    amount = f"{adaptation.minutes:g} min" if adaptation.minutes is not None else f"{adaptation.iterations} iterations"
    return f"; each case first fine-tunes a copy of the model on itself ({amount})"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def predict_paths(inputs: str | Path, output: str | Path, model: Model | str | Path | None = None,
                  options: PredictOptions | None = None, log: Callable[[str], None] = _stderr) -> list[CaseResult]:
    """Super-resolve a file, a DICOM series folder or a folder of them into `output` (never the input folder).

    `model`: a Model (see model_resolution.resolve_model), a run folder or checkpoint, or None for the shipped
    weights. A case that fails is reported in its CaseResult; the others are still written.
    """
    options = options or PredictOptions()
    inputs, output = Path(inputs), Path(output)
    cases = part_of(find_inputs(inputs), options.num_parts, options.part_id)
    check_not_an_input(output, [inputs if inputs.is_dir() else inputs.parent, inputs], replaced=False)
    device = resolve_device(options.device)
    check_amp(device, options.amp)  # here too: before worker processes would fail on it one by one
    model = as_model(model)
    log(f"isr_predict: model {model.description}; {len(cases)} case(s) -> {output}{_adapting(options.adaptation)}")
    if not cases:  # a part of a split with more parts than inputs
        return []
    output.mkdir(parents=True, exist_ok=True)
    processes = min(options.processes, len(cases))
    threads = max(1, (os.cpu_count() or 1) // processes)
    results: list[CaseResult] = []

    def report(result: CaseResult) -> None:
        results.append(result)
        if result.message:
            write(f"{result.source.name}: {result.message}", file=sys.stderr)
        elif not stderr_is_terminal():  # in a log: one line per case instead of a bar
            log(f"{result.source.name}: written to {result.output}")

    if processes == 1:
        _load_predictor(model, device, threads, options.amp)
        for source in cases:
            with progress(desc=source.name, unit="gap", leave=False) as bar:
                report(_predict_one((source, output, options.settings, options.dtype, bar, options.output,
                                     options.adaptation)))
    else:
        tasks = [(source, output, options.settings, options.dtype, None, options.output, options.adaptation)
                 for source in cases]
        with ProcessPoolExecutor(processes, initializer=_load_predictor,
                                 initargs=(model, device, threads, options.amp)) as pool:
            for result in progress(pool.map(_predict_one, tasks), total=len(tasks), desc="cases", unit="case"):
                report(result)
    failures = sum(result.failed for result in results)
    log(f"isr_predict: {len(results) - failures} of {len(results)} case(s) written to {output}"
        + (f", {failures} failed" if failures else ""))
    return results
