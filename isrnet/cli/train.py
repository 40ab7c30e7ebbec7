"""`isr_train DATASET STAGE`: train one stage (video, mrft or ssft) on a planned and preprocessed dataset."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import parse_overrides, positive_float, positive_int, run_cli
from isrnet.configuration import STAGES

EPILOG = """examples:
  isr_train 001 ssft                          fine-tune on your data from the mrft/shipped weights (8 min on CPU)
  isr_train 001 ssft --from-scratch --tag scratch
  isr_train 001 ssft --c --iterations 2000    continue (or extend) a run
  isr_train 900 video ; isr_train 901 mrft    the pre-training stages
  torchrun --nproc_per_node=2 $(which isr_train) 001 ssft    data-parallel (gloo on CPU, nccl on CUDA)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isr_train", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="1, 001 or Dataset001_Name (planned with isr_plan_and_preprocess)")
    parser.add_argument("stage", help=f"one of {', '.join(STAGES)}")
    parser.add_argument("--iterations", type=positive_int, help="fixed iteration count (default: from the budget)")
    parser.add_argument("--budget-minutes", type=positive_float,
                        help="wall-clock cap for this whole command (default: the plan's; 8 min for ssft on CPU)")
    parser.add_argument("--lr", type=positive_float, help="initial learning rate (poly decay to 0)")
    parser.add_argument("--batch-size", type=positive_int, help="samples per iteration (per process with torchrun)")
    parser.add_argument("--patch-size", type=positive_int, help="in-plane patch size in pixels")
    parser.add_argument("-device", choices=("cpu", "cuda"), default=None, help="default: the plan's device")
    parser.add_argument("--seed", type=int, help="same seed + same config on CPU = same loss curve")
    parser.add_argument("--workers", type=int, help="background sampling processes (default 1; 0 = none)")
    parser.add_argument("-init", dest="init", metavar="CHECKPOINT", help="start from these weights")
    parser.add_argument("--from-scratch", action="store_true", help="start from random weights")
    parser.add_argument("--tag", help="name variants side by side: results in <stage>__<tag>/")
    parser.add_argument("--c", dest="continue_training", action="store_true",
                        help="continue from checkpoint_latest.pth (with --iterations N: extend to N)")
    parser.add_argument("--set", dest="overrides", nargs="+", metavar="KEY=VALUE",
                        help="override plans values for this run, e.g. sampler.pairs=\"slices\"")
    return parser


def train(args: argparse.Namespace, command_start: float, command: str | None = None) -> None:
    """Train one stage; `command` is what provenance records (default: this process's command line)."""
    from isrnet import paths
    from isrnet.datasets import resolve_dataset
    from isrnet.errors import IsrnetError
    from isrnet.experiment_planning.planner import set_dotted
    from isrnet.experiment_planning.plans_file import load_plans
    from isrnet.training.config import TrainingConfig
    from isrnet.training.distributed import init_distributed, shutdown_distributed
    from isrnet.training.initialization import Initialisation, resolve_initialisation
    from isrnet.training.stages import build_samplers, check_stage, trained_factor_range
    from isrnet.training.trainer import Trainer

    if args.stage not in STAGES:
        raise IsrnetError(f"unknown stage '{args.stage}'; valid stages: {', '.join(STAGES)}")
    if args.init and args.from_scratch:
        raise IsrnetError("-init and --from-scratch exclude each other")
    dataset = resolve_dataset(args.dataset)
    plans = load_plans(dataset)
    for key, value in parse_overrides(args.overrides).items():
        set_dotted(plans, key, value)
    check_stage(args.stage, plans)
    device = args.device or plans.get("device", "cpu")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise IsrnetError("-device cuda: this torch build sees no CUDA device; use -device cpu")
    config = TrainingConfig.from_plans(plans, args.stage, {
        "iterations": args.iterations, "budget_minutes": args.budget_minutes, "lr": args.lr,
        "batch_size": args.batch_size, "patch_size": args.patch_size, "device": device, "seed": args.seed,
        "workers": args.workers, "init": args.init, "from_scratch": args.from_scratch, "tag": args.tag,
        "continue_training": args.continue_training})
    config.extra["trained_factors"] = trained_factor_range(args.stage, plans, config.sampler)
    output = paths.results_folder() / dataset / config.run_name
    if output.joinpath("checkpoint_final.pth").is_file() and not config.continue_training:
        raise IsrnetError(f"{output} already holds a finished run; use --c --iterations N to extend it, "
                          f"or --tag NAME for a new variant")
    if config.continue_training:  # the weights come from checkpoint_latest.pth; nothing to look for
        initialisation = Initialisation(None, "resumed from checkpoint_latest.pth")
    else:
        initialisation = resolve_initialisation(args.stage, plans["network"], plans["stage_datasets"], config.init,
                                                config.from_scratch)
    distributed = init_distributed(device)
    try:
        train_sampler, val_sampler = build_samplers(args.stage, dataset, config.sampler,
                                                    config.network["kwargs"]["context"])
        Trainer(config, train_sampler, val_sampler, output, plans, initialisation, distributed, command_start,
                command).run()
    finally:
        shutdown_distributed(distributed)


def main() -> None:
    start = time.time()
    parser = build_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: train(args, start))
