"""`isr_plan_and_preprocess` and its three parts: `isr_extract_fingerprint`, `isr_plan`, `isr_preprocess`."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import parse_overrides, positive_float, positive_int, run_cli
from isrnet.datasets import resolve_dataset
from isrnet.utilities.device import DEVICES


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", dest="datasets", nargs="+", required=True,
                        help="dataset(s): 1, 001 or Dataset001_Name")
    parser.add_argument("-np", dest="workers", type=positive_int, default=2,
                        help="worker processes (default 2)")


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("planner overrides (recorded in plans.json)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--factor", type=positive_float,
                           help="upsampling factor for every case (default: slice spacing / finest in-plane spacing)")
    exclusive.add_argument("--target-spacing", type=positive_float,
                           help="output slice spacing in mm (factor = slice spacing / this)")
    group.add_argument("--budget-minutes", type=positive_float,
                       help="wall-clock cap of the training command for this dataset's stage "
                            "(default: 8 for ssft, 30 for video/mrft on CPU)")
    group.add_argument("-device", choices=DEVICES, default="cpu",
                       help="device the plan is made for: sets patch/batch size from its memory budget")
    group.add_argument("--set", dest="overrides", nargs="+", metavar="KEY=VALUE",
                       help="override any plans value, e.g. training.patch_size=64 sampler.pairs=\"slices\"")


def _plan_options(args) -> "PlanOptions":
    from isrnet.experiment_planning import PlanOptions
    return PlanOptions(args.device, args.factor, args.target_spacing, args.budget_minutes,
                       parse_overrides(args.overrides))


def _fingerprint(args) -> None:
    from isrnet.experiment_planning import extract_fingerprint
    for dataset in args.datasets:
        start = time.time()
        fingerprint = extract_fingerprint(resolve_dataset(dataset), args.workers)
        print(f"{fingerprint['dataset']}: fingerprint of {len(fingerprint['cases'])} case(s) "
              f"in {time.time() - start:.1f} s")


def _plan(args) -> None:
    from isrnet.experiment_planning import describe_plan, plan_experiment
    from isrnet.experiment_planning.steps import load_fingerprint
    for dataset in args.datasets:
        plans = plan_experiment(dataset, _plan_options(args))
        print(describe_plan(plans, load_fingerprint(plans.dataset)))


def _preprocess(args) -> None:
    from isrnet import paths
    from isrnet.experiment_planning import preprocess
    for dataset in args.datasets:
        name = resolve_dataset(dataset)
        start = time.time()
        preprocess(name, args.workers)
        print(f"{name}: preprocessed into {paths.preprocessed_folder() / name} in {time.time() - start:.1f} s")


def _verify(args) -> None:
    from isrnet.datasets import verify_dataset_integrity
    for dataset in args.datasets:
        for note in verify_dataset_integrity(resolve_dataset(dataset)):
            print(note)


def _single_step(prog: str, description: str, arguments: list, step) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for add in arguments:
        add(parser)
    args = parser.parse_args()
    run_cli(parser.prog, lambda: step(args))


def _plan_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", dest="datasets", nargs="+", required=True, help="dataset(s): 1, 001 or Dataset001_Name")


def main_extract_fingerprint() -> None:
    _single_step("isr_extract_fingerprint", "Per-case spacing, slice axis, thickness and intensity statistics "
                 "-> $isrnet_preprocessed/DatasetXXX/dataset_fingerprint.json", [_dataset_arguments], _fingerprint)


def main_plan() -> None:
    _single_step("isr_plan", "Fingerprint -> plans.json (factor, slice axis, patch/batch size, budgets, stage "
                 "datasets). Needs isr_extract_fingerprint.", [_plan_dataset_arguments, _plan_arguments], _plan)


def main_preprocess() -> None:
    _single_step("isr_preprocess", "Slice axis first, crop to foreground, normalise and save, as plans.json says. "
                 "Needs isr_plan.", [_dataset_arguments], _preprocess)


def main_plan_and_preprocess() -> None:
    parser = argparse.ArgumentParser(
        prog="isr_plan_and_preprocess",
        description="Fingerprint, plan and preprocess a raw dataset ($isrnet_raw/DatasetXXX_Name). "
                    "Outputs go to $isrnet_preprocessed/DatasetXXX_Name/: dataset_fingerprint.json, plans.json, "
                    "data/ and properties/.")
    _dataset_arguments(parser)
    parser.add_argument("--verify_dataset_integrity", action="store_true",
                        help="also check that referenceTr/ matches imagesTr/ (every image is read and "
                             "checked for NaN/Inf, 2D, too few slices in any case)")
    _plan_arguments(parser)
    args = parser.parse_args()

    def body() -> None:
        if args.verify_dataset_integrity:
            _verify(args)
        start = time.time()
        _fingerprint(args)
        _plan(args)
        _preprocess(args)
        print(f"done in {time.time() - start:.1f} s")

    run_cli(parser.prog, body)
