"""The one trainer: any stage is just a different sampler. Budgeted, resumable, deterministic, DDP-ready.

Outputs in `$isrnet_results/DatasetXXX_Name/<stage>[__<tag>]/`: checkpoint_latest/best/final.pth,
progress.png, training_log.txt, debug.json (resolved config, init weights, iteration count), plans.json.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from isrnet import __version__
from isrnet.errors import IsrnetError
from isrnet.utilities.psnr import psnr_from_mse
from isrnet.networks import build_network
from isrnet.networks.slice_synth import cubic_between
from isrnet.training.checkpointing import check_compatible, load_checkpoint, save_checkpoint
from isrnet.training.config import TrainingConfig
from isrnet.training.data_loading import PairSampler, batches, fixed_batches
from isrnet.training.distributed import DistributedContext
from isrnet.training.initialization import Initialisation
from isrnet.runs import DEBUG_FILE, RunRecord
from isrnet.training.budget import IterationBudget
from isrnet.training.losses import loss_function
from isrnet.training.progress_plot import plot_progress
from isrnet.utilities.files import save_json
from isrnet.utilities.progress import progress, write
from isrnet.utilities.provenance import command_line, git_commit, machine

WARMUP_ITERATIONS = 6  # run at the start; all but the first are timed to turn the budget into an iteration count


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR of normalised slices (data range 1)."""
    return psnr_from_mse(float(torch.mean((prediction.float() - target.float()) ** 2)))


def poly_lr(base: float, iteration: int, total: int) -> float:
    return base * (1.0 - min(iteration, total) / max(total, 1)) ** 0.9


class Trainer:
    def __init__(self, config: TrainingConfig, train_sampler: PairSampler, val_sampler: PairSampler,
                 output: Path, plans: dict, initialisation: Initialisation,
                 distributed: DistributedContext = DistributedContext(), command_start: float | None = None,
                 command: str | None = None) -> None:
        self.config, self.train_sampler, self.val_sampler = config, train_sampler, val_sampler
        self.output, self.plans, self.initialisation, self.distributed = output, plans, initialisation, distributed
        self.command_start = time.time() if command_start is None else command_start
        # recorded when the code is loaded: the source may be edited while a long run goes on
        self.provenance = {"command": command or command_line(), "git_commit": git_commit(), "machine": machine()}
        self.earlier_commands: list[dict] = []  # of this run, when it is continued with --c
        self.device = torch.device(config.device)
        torch.manual_seed(config.seed)  # random initial weights depend on the seed only, not on earlier use of torch
        self.network = build_network(config.network).to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.loss = loss_function(config.loss)
        self.history: dict = {"loss": [], "validation": []}
        self.iteration, self.total = 0, config.iterations
        self.best_psnr = -float("inf")
        self.budget: IterationBudget | None = None  # set when the count comes from the budget (re-estimated)

    # ---- set-up -----------------------------------------------------------------------------------------
    def _log(self, message: str) -> None:
        if self.distributed.is_main:
            write(message)
            with open(self.output / "training_log.txt", "a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def _prepare(self) -> None:
        if self.distributed.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            save_json(self.plans, self.output / "plans.json")
        if self.config.continue_training:
            self._resume()
        elif self.initialisation.state_dict is not None:
            self.network.load_state_dict(self.initialisation.state_dict)
        self._log(f"isrnet {__version__}: {self.config.run_name} on {self.config.dataset}, device {self.device}, "
                  f"initial weights: {self.initialisation.description}")

    def _resume(self) -> None:
        path = self.output / "checkpoint_latest.pth"
        if not path.is_file():
            raise IsrnetError(f"--c: no checkpoint_latest.pth in {self.output}; start without --c")
        checkpoint = load_checkpoint(path)
        check_compatible(checkpoint, self.config.network, f"--c: {path}")  # plans may have changed since
        self.network.load_state_dict(checkpoint["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.iteration, self.history = checkpoint["iteration"], checkpoint["history"]
        self.best_psnr = checkpoint.get("best_psnr", -float("inf"))
        recorded = checkpoint["total_iterations"]
        if self.config.iterations is not None and self.config.iterations < self.iteration:
            raise IsrnetError(f"--iterations {self.config.iterations} is below the {self.iteration} already done")
        self.total = self.config.iterations if self.config.iterations is not None else recorded
        debug = self.output / DEBUG_FILE
        if debug.is_file():
            before = RunRecord.load(debug)
            self.initialisation = Initialisation(None, before.initial_weights or "unknown", before.initial_weights_path)
            self.earlier_commands = before.earlier_commands + [before.continued()]
        self._log(f"resuming at iteration {self.iteration} of {self.total}")

    # ---- training ---------------------------------------------------------------------------------------
    def _to_device(self, batch: dict) -> tuple[torch.Tensor, ...]:
        return tuple(torch.as_tensor(np.asarray(batch[key])).to(self.device)
                     for key in ("context", "positions", "targets", "conditioning"))

    def _train_step(self, model: torch.nn.Module, batch: dict) -> float:
        context, positions, targets, conditioning = self._to_device(batch)
        lr = poly_lr(self.config.lr, self.iteration, self.total or 1)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.history.setdefault("lr", []).append(lr)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(model(context, positions, conditioning), targets)
        if not torch.isfinite(loss):
            raise IsrnetError(f"loss became {float(loss)} at iteration {self.iteration}; lower --lr")
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, validation: list) -> dict:
        self.network.eval()
        model_psnr, cubic_psnr = [], []
        for batch in validation:
            context, positions, targets, conditioning = self._to_device(batch.as_dict())
            model_psnr.append(psnr(self.network(context, positions, conditioning), targets))
            cubic_psnr.append(psnr(cubic_between(context, positions), targets))
        self.network.train()
        return {"iteration": self.iteration, "psnr": float(np.mean(model_psnr)),
                "psnr_cubic": float(np.mean(cubic_psnr))}

    def _checkpoint(self) -> dict:
        return {"network": self.config.network, "state_dict": self.network.state_dict(),
                "optimizer": self.optimizer.state_dict(), "iteration": self.iteration,
                "total_iterations": self.total, "history": self.history, "best_psnr": self.best_psnr,
                "stage": self.config.stage, "dataset": self.config.dataset, "isrnet_version": __version__,
                "trained_factors": self.config.extra.get("trained_factors")}

    def _save(self, *names: str) -> None:
        if self.distributed.is_main:
            content = self._checkpoint()
            for name in names:
                save_checkpoint(content, self.output / f"checkpoint_{name}.pth")

    def _measure_total(self, stream, model, validation_seconds: float) -> None:
        """Time a few iterations, then set the iteration count so the whole command fits the budget (it is
        re-estimated at every validation, see _re_estimate)."""
        self.budget = IterationBudget(self.config.budget_minutes, self.command_start)
        for index in range(WARMUP_ITERATIONS):
            if index == 1:  # the first iteration pays for worker start-up and allocation
                self.budget.start_window(self.iteration)
            self.history["loss"].append(self._train_step(model, next(stream)))
        per_iteration = (time.time() - self.budget.window_start) / (WARMUP_ITERATIONS - 1)
        per_iteration += validation_seconds / max(self.config.validation_every, 1)
        self.total = self.distributed.broadcast_int(self.budget.total(self.iteration, per_iteration,
                                                                      validation_seconds))
        self.budget.start_window(self.iteration)
        self._log(f"budget {self.config.budget_minutes:g} min: {per_iteration:.3f} s per iteration measured "
                  f"-> {self.total} iterations (re-estimated at every validation)")

    def _re_estimate(self, validation_seconds: float, bar) -> None:
        """Follow the machine's current speed: a new count from the throughput since the last estimate."""
        if self.budget is None or self.iteration >= self.total:  # the run ends here: do not stretch it by a few
            return
        total = self.budget.re_estimate(self.iteration, validation_seconds)
        if total is None:
            return
        total = self.distributed.broadcast_int(total)  # every rank trains rank 0's count
        if total != self.total:
            self._log(f"iteration {self.iteration}: {self.budget.history[-1][2]:.3f} s per iteration lately -> "
                      f"{total} iterations in all (was {self.total})")
            self.total = bar.total = total

    def _write_debug(self, seconds: float) -> None:
        if self.distributed.is_main:
            RunRecord(config=self.config.to_dict(), initial_weights=self.initialisation.description,
                      initial_weights_path=self.initialisation.path, iterations=self.total,
                      iterations_done=self.iteration, world_size=self.distributed.world_size,
                      seconds_this_command=round(seconds, 1),
                      budget_estimates=self.budget.history if self.budget else [],
                      started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.command_start)),
                      **self.provenance, earlier_commands=self.earlier_commands, isrnet_version=__version__,
                      torch_version=torch.__version__).save(self.output / DEBUG_FILE)

    def run(self) -> dict:
        """Train until the fixed iteration count; returns the last validation result."""
        self._prepare()
        model = self.network
        if self.distributed.enabled:
            model = DistributedDataParallel(self.network)
        config = self.config
        validation = fixed_batches(self.val_sampler, config.validation_batches, config.batch_size,
                                   config.patch_size, config.seed)
        start_validation = time.time()
        if not self.history["validation"]:
            self.history["validation"].append(self.validate(validation))
        validation_seconds = time.time() - start_validation
        stream = batches(self.train_sampler, config.batch_size, config.patch_size, config.seed, self.iteration,
                         config.workers, self.distributed.rank)
        self.network.train()
        try:
            if self.total is None:
                self._measure_total(stream, model, validation_seconds)
            self._write_debug(time.time() - self.command_start)
            self._loop(stream, model, validation)
        finally:
            stream.close()
        final = self.validate(validation)
        if not self.history["validation"] or self.history["validation"][-1]["iteration"] != self.iteration:
            self.history["validation"].append(final)
        self._save("latest", "final")
        if self.distributed.is_main:
            plot_progress(self.history, self.output / "progress.png", f"{config.dataset} {config.run_name}")
        self._write_debug(time.time() - self.command_start)
        self._log(f"finished {self.iteration} iterations in {time.time() - self.command_start:.0f} s: validation "
                  f"PSNR {final['psnr']:.2f} dB (cubic {final['psnr_cubic']:.2f} dB, "
                  f"{final['psnr'] - final['psnr_cubic']:+.2f} dB)")
        return final

    def _loop(self, stream, model, validation: list) -> None:
        config = self.config
        last_save = time.time()
        # `with`: the bar is closed on errors too, so an error message starts on a line of its own
        with progress(total=self.total, initial=self.iteration, desc=config.run_name, unit="it",
                      disable=not self.distributed.is_main) as bar:
            while self.iteration < self.total:
                loss = self._train_step(model, next(stream))
                self.history["loss"].append(loss)
                bar.update(1)
                if self.iteration % config.validation_every == 0 or self.iteration == self.total:
                    started_validation = time.time()
                    result = self.validate(validation)
                    self.history["validation"].append(result)
                    if result["psnr"] > self.best_psnr:
                        self.best_psnr = result["psnr"]
                        self._save("best")
                    bar.set_postfix(loss=f"{loss:.4f}", val=f"{result['psnr']:.2f}dB",
                                    cubic=f"{result['psnr_cubic']:.2f}dB")
                    self._log(f"iteration {self.iteration}: loss "
                              f"{np.mean(self.history['loss'][-config.validation_every:]):.4f}, validation PSNR "
                              f"{result['psnr']:.2f} dB (cubic {result['psnr_cubic']:.2f} dB)")
                    self._re_estimate(time.time() - started_validation, bar)
                if time.time() - last_save >= config.checkpoint_every_seconds:
                    self._save("latest")
                    last_save = time.time()
