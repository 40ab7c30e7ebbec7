"""`isr_predict -i IN -o OUT`: super-resolve volumes along their slice axis with exact output geometry."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from isrnet.cli.common import positive_float, positive_int, run_cli
from isrnet.imageio.formats import OUTPUT_DTYPES

EPILOG = """model choice: -d DATASET (its ssft run, else mrft, else video; --stage for another), -m MODEL_DIR|CHECKPOINT, or neither
for the weights shipped with isrnet. Outputs keep the input's name (NIfTI, or the input's format when it
holds float voxels), plus NAME.json describing model, factor and thickness.

examples:
  isr_predict -i scans/ -o sr/ -d 001                  the ssft model fine-tuned on dataset 001
  isr_predict -i t2_ax.nii.gz -o sr/ --target-spacing 1.0
  isr_predict -i scans/ -o sr/ -num_parts 4 -part_id 0 (on 4 nodes/processes: part_id 0..3)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_predict", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="input", type=Path, required=True,
                        help="a file, a DICOM series folder, or a folder of files and DICOM series folders")
    parser.add_argument("-o", dest="output", type=Path, required=True, help="output folder (never the input folder)")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("-d", dest="dataset", help="use this dataset's trained model: its ssft run (else mrft, else video); 1, 001 or Dataset001_Name")
    model.add_argument("-m", dest="model", type=Path, help="a results run folder or a checkpoint file")
    parser.add_argument("--stage", help="with -d: which run (ssft, mrft, video, or e.g. ssft__scratch)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--factor", type=positive_float, help="upsampling factor (default: the plan's for known "
                       "cases, else slice spacing / finest in-plane spacing)")
    scale.add_argument("--target-spacing", type=positive_float, help="output slice spacing in mm")
    parser.add_argument("--slice-thickness", type=positive_float,
                        help="input slice thickness in mm (default: the plan's, DICOM's, else the spacing)")
    parser.add_argument("--dtype", choices=OUTPUT_DTYPES,
                        help="output voxel type (default float32)")
    parser.add_argument("--no-keep-input", dest="keep_input", action="store_false",
                        help="also re-synthesise output slices that coincide with input slices")
    parser.add_argument("--tta", action="store_true", help="average over in-plane flips (4x slower)")
    parser.add_argument("-device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("-np", dest="processes", type=positive_int, default=1, help="cases in parallel")
    parser.add_argument("-num_parts", type=positive_int, default=1, help="split the inputs into this many parts")
    parser.add_argument("-part_id", type=int, default=0, help="which part this process does (0-based)")
    return parser


_predictor = None


def _worker_init(checkpoint: str, device: str, threads: int) -> None:
    import torch

    from isrnet.inference.predictor import Predictor
    global _predictor
    torch.set_num_threads(threads)
    _predictor = Predictor.from_checkpoint(checkpoint, device)


def _settings(args, plans: dict | None, source: Path):
    from isrnet.datasets import case_name
    from isrnet.inference.predictor import PredictionSettings
    plan = (plans or {}).get("cases", {}).get(case_name(source), {}) if (plans or {}).get("kind") == "target" else {}
    factor = args.factor if args.factor or args.target_spacing else plan.get("factor")
    thickness = args.slice_thickness or plan.get("slice_thickness")
    return PredictionSettings(factor, args.target_spacing, thickness, args.keep_input, args.tta)


def _predict_one(task: tuple) -> tuple[str, str | None]:
    from isrnet.errors import IsrnetError
    from isrnet.inference.predict_files import predict_file
    source, output, settings, dtype, progress = task
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            target = predict_file(_predictor, source, output, settings, dtype, progress)
        notes = "; ".join(str(w.message) for w in caught)
        return str(target), (f"warning: {notes}" if notes else None)
    except IsrnetError as error:
        return str(source), f"error: {error}"


def predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from isrnet.datasets import resolve_dataset
    from isrnet.errors import IsrnetError
    from isrnet.inference import model_resolution
    from isrnet.inference.predict_files import find_inputs, part_of

    inputs = part_of(find_inputs(args.input), args.num_parts, args.part_id)
    source_folder = args.input if args.input.is_dir() else args.input.parent
    if args.output.resolve() == source_folder.resolve() or args.output.resolve() == args.input.resolve():
        raise IsrnetError("-o must differ from the input folder: isrnet never overwrites its inputs")
    if args.stage and not args.dataset:
        raise IsrnetError("--stage goes with -d DATASET")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise IsrnetError("-device cuda: this torch build sees no CUDA device; use -device cpu")
    if args.model:
        choice = model_resolution.from_model_path(args.model)
    elif args.dataset:
        choice = model_resolution.from_dataset(resolve_dataset(args.dataset), args.stage)
    else:
        choice = model_resolution.shipped_model()
    print(f"isr_predict: model {choice.description}; {len(inputs)} case(s) -> {args.output}", file=sys.stderr)
    args.output.mkdir(parents=True, exist_ok=True)
    processes = min(args.processes, len(inputs))
    threads = max(1, (os.cpu_count() or 1) // processes)
    failures = 0

    def report(result: tuple[str, str | None]) -> None:
        nonlocal failures
        path, message = result
        if message and message.startswith("error"):
            failures += 1
        if message:
            tqdm.write(f"{Path(path).name}: {message}", file=sys.stderr)

    if processes == 1:
        _worker_init(str(choice.checkpoint), args.device, threads)
        for source in inputs:
            with tqdm(desc=source.name, unit="gap", leave=False, dynamic_ncols=True) as bar:
                report(_predict_one((source, args.output, _settings(args, choice.plans, source), args.dtype,
                                     bar.update)))
    else:
        tasks = [(s, args.output, _settings(args, choice.plans, s), args.dtype, None) for s in inputs]
        with ProcessPoolExecutor(processes, initializer=_worker_init,
                                 initargs=(str(choice.checkpoint), args.device, threads)) as pool:
            for result in tqdm(pool.map(_predict_one, tasks), total=len(tasks), desc="cases", unit="case"):
                report(result)
    done = len(inputs) - failures
    print(f"isr_predict: {done} of {len(inputs)} case(s) written to {args.output}"
          + (f", {failures} failed" if failures else ""), file=sys.stderr)
    return 0 if failures == 0 else 1


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: predict(args))
