"""`isr_plan_and_preprocess` and its three parts: `isr_extract_fingerprint`, `isr_plan`, `isr_preprocess`."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import parse_overrides, positive_float, positive_int, run_cli
from isrnet.datasets import resolve_dataset


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
    group.add_argument("-device", choices=("cpu", "cuda"), default="cpu",
                       help="device the plan is made for: sets patch/batch size from its memory budget")
    group.add_argument("--set", dest="overrides", nargs="+", metavar="KEY=VALUE",
                       help="override any plans value, e.g. training.patch_size=64 sampler.pairs=\"slices\"")


def _fingerprint(args) -> None:
    from isrnet.experiment_planning.fingerprint import extract_fingerprint
    for dataset in args.datasets:
        start = time.time()
        fingerprint = extract_fingerprint(resolve_dataset(dataset), args.workers)
        print(f"{fingerprint['dataset']}: fingerprint of {len(fingerprint['cases'])} case(s) "
              f"in {time.time() - start:.1f} s")


def _plan(args) -> None:
    from isrnet.experiment_planning.fingerprint import fingerprint_path
    from isrnet.experiment_planning.plans_file import plans_path
    from isrnet.experiment_planning.planner import plan_dataset
    from isrnet.errors import IsrnetError
    from isrnet.utilities.files import load_json, save_json
    for dataset in args.datasets:
        name = resolve_dataset(dataset)
        path = fingerprint_path(name)
        if not path.is_file():
            raise IsrnetError(f"dataset {name} has no fingerprint; run: isr_extract_fingerprint -d {dataset}")
        plans = plan_dataset(load_json(path), args.device, args.factor, args.target_spacing,
                             args.budget_minutes, parse_overrides(args.overrides))
        save_json(plans, plans_path(name))
        _print_plan_summary(plans)


def _print_plan_summary(plans: dict) -> None:
    training = plans["training"]
    print(f"{plans['dataset']} ({plans['kind']}): stage {training['stage']}, patch {training['patch_size']}, "
          f"batch {training['batch_size']}, budget {training['budget_minutes']:g} min")
    if plans["kind"] == "video":
        print(f"  {len(plans['cases'])} clip(s)")
        return
    for case, plan in plans["cases"].items():
        if plan["skip"]:
            print(f"  {case}: skipped, {plan['reason']}")
        elif plans["kind"] == "hr_mr":
            print(f"  {case}: isotropic {'x'.join(f'{s:g}' for s in plan['spacing'])} mm, every axis used")
        else:
            print(f"  {case}: slice axis {plan['slice_axis']}, spacing "
                  f"{'x'.join(f'{s:g}' for s in plan['spacing'])} mm, factor x{plan['factor']:g}, "
                  f"thickness {plan['slice_thickness']:g} mm ({plan['thickness_source']})")


def _preprocess(args) -> None:
    from isrnet.experiment_planning.fingerprint import fingerprint_path
    from isrnet.experiment_planning.plans_file import load_plans
    from isrnet.preprocessing.preprocessor import preprocess_dataset
    from isrnet.utilities.files import load_json
    for dataset in args.datasets:
        name = resolve_dataset(dataset)
        start = time.time()
        plans = load_plans(name)
        output = preprocess_dataset(name, load_json(fingerprint_path(name)), plans, args.workers)
        print(f"{name}: preprocessed into {output} in {time.time() - start:.1f} s")


def _verify(args) -> None:
    from isrnet.datasets import list_cases, load_dataset_info, raw_dataset_folder
    from isrnet.errors import IsrnetError
    for dataset in args.datasets:
        folder = raw_dataset_folder(resolve_dataset(dataset))
        info = load_dataset_info(folder)
        reference = folder / "referenceTr"
        if info.kind != "video" and reference.is_dir():
            missing = sorted(set(list_cases(folder / "imagesTr")) - set(list_cases(reference)))
            extra = sorted(set(list_cases(reference)) - set(list_cases(folder / "imagesTr")))
            if extra:
                raise IsrnetError(f"{reference}: references without a matching image in imagesTr: {', '.join(extra)}")
            if missing:
                print(f"{folder.name}: note: no reference for {', '.join(missing)} (evaluation skips them)")


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
