"""`isr_train DATASET STAGE`: train one stage (video, mrft or ssft) on a planned and preprocessed dataset."""
from __future__ import annotations

import argparse
import time

from isrnet.cli.common import parse_overrides, positive_float, positive_int, run_cli
from isrnet.stages import PIPELINE
from isrnet.utilities.device import DEVICES

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
    parser.add_argument("stage", help=f"one of {', '.join(PIPELINE)}")
    parser.add_argument("--iterations", type=positive_int, help="fixed iteration count (default: from the budget)")
    parser.add_argument("--budget-minutes", type=positive_float,
                        help="wall-clock cap for this whole command (default: the plan's; 8 min for ssft on CPU)")
    parser.add_argument("--lr", type=positive_float, help="peak learning rate (linear warm-up over the plans' training.warmup_fraction, then poly "
                        "decay to 0; default: the plans' training.lr)")
    parser.add_argument("--batch-size", type=positive_int, help="samples per iteration (per process with torchrun)")
    parser.add_argument("--patch-size", type=positive_int, help="in-plane patch size in pixels")
    parser.add_argument("-device", choices=DEVICES, default=None, help="default: the plan's device")
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


def options_from(args: argparse.Namespace, started: float) -> "TrainingOptions":
    from isrnet.training import TrainingOptions
    return TrainingOptions(
        iterations=args.iterations, budget_minutes=args.budget_minutes, lr=args.lr, batch_size=args.batch_size,
        patch_size=args.patch_size, device=args.device, seed=args.seed, workers=args.workers, init=args.init,
        from_scratch=args.from_scratch, tag=args.tag, continue_training=args.continue_training,
        plans_overrides=parse_overrides(args.overrides), started=started)


def main() -> None:
    started = time.time()
    parser = build_parser()
    args = parser.parse_args()

    def body() -> None:
        from isrnet.training import run_training
        run_training(args.dataset, args.stage, options_from(args, started))

    run_cli(parser.prog, body)
