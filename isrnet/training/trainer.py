"""The one trainer: any stage is just a different sampler. Budgeted, resumable, deterministic, DDP-ready.

Outputs in `$isrnet_results/DatasetXXX_Name/<stage>[__<tag>]/`: checkpoint_latest/best/final.pth,
progress.png, training_log.txt, debug.json (resolved config, init weights, iteration count, the guard's
decision), plans.json; checkpoint_start.pth when the run started from weights.

Never worse than the start (on what the run can measure): a run that starts from weights validates them at
iteration 0 and, at the end, training/guard.py decides by the plans' rule `training.guard` whether
checkpoint_final.pth holds the run's own weights or the starting ones; debug.json's `guard` says which and why.
Its signals are the stage's validation pairs (for ssft: held-out in-plane degradations with the case's slice
profile) and, for ssft, hidden real slices of the training cases (training/hidden_slice_witness.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from isrnet import __version__
from isrnet.errors import IsrnetError
from isrnet.plans import Plans
from isrnet.utilities.psnr import psnr_from_mse
from isrnet.networks import build_network
from isrnet.networks.slice_synth import cubic_between
from isrnet.training.guard import KEPT_WORDS, Signal, decide, weights_between
from isrnet.training.checkpointing import check_compatible, load_checkpoint, network_from_checkpoint, save_checkpoint
from isrnet.training.config import TrainingConfig
from isrnet.training.data_loading import PairSampler, batches, fixed_batches
from isrnet.training.distributed import DistributedContext
from isrnet.training.initialisation import Initialisation
from isrnet.runs import DEBUG_FILE, RunRecord
from isrnet.training.budget import RE_ESTIMATE_EVERY, IterationBudget
from isrnet.training.losses import loss_function
from isrnet.training.progress_plot import plot_progress
from isrnet.utilities.files import save_json
from isrnet.utilities.progress import progress, write
from isrnet.utilities.provenance import command_line, git_commit, machine

THREAD_TRIAL = 3  # iterations timed per candidate thread count at the start of a budgeted run


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR of normalised slices (data range 1)."""
    return psnr_from_mse(float(torch.mean((prediction.float() - target.float()) ** 2)))


def scheduled_lr(base: float, iteration: int, total: int, warmup_fraction: float = 0.0) -> float:
    """Linear warm-up over the first `warmup_fraction` of the run, then poly decay (power 0.9) to 0 at `total`.

    Both follow `total`, so a run whose count is re-estimated still warms up and ends at 0."""
    total = max(total, 1)
    warmup = warmup_fraction * total
    if iteration < warmup:
        return base * (iteration + 1) / (warmup + 1)
    return base * (1.0 - min(iteration, total) / total) ** 0.9


class Trainer:
    def __init__(self, config: TrainingConfig, train_sampler: PairSampler, val_sampler: PairSampler,
                 output: Path, plans: Plans, initialisation: Initialisation,
                 distributed: DistributedContext = DistributedContext(), command_start: float | None = None,
                 command: str | None = None, witness_cases: list | None = None) -> None:
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
        self.validation_seconds = 0.0  # how long the latest validation took (the budget reserves it)
        self.guard: dict | None = None  # the never-worse decision, for runs that started from weights
        self.witness_cases = witness_cases  # ssft's cases: the guard's hidden-slice witness (hidden_slice_witness.py)
        self.threads: dict | None = None  # torch threads chosen at the start of a budgeted run (and why)

    # ---- set-up -----------------------------------------------------------------------------------------
    def _log(self, message: str) -> None:
        if self.distributed.is_main:
            write(message)
            with open(self.output / "training_log.txt", "a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def _prepare(self) -> None:
        if self.distributed.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            save_json(self.plans.as_json(), self.output / "plans.json")
        if self.config.continue_training:
            self._resume()
        elif self.initialisation.state_dict is not None:
            self.network.load_state_dict(self.initialisation.state_dict)
            if self.distributed.is_main:  # what the guard falls back to, also after a resume
                save_checkpoint({"network": self.config.network, "state_dict": self.initialisation.state_dict,
                                 "description": self.initialisation.description}, self._start_path)
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

    @property
    def _start_path(self) -> Path:
        return self.output / "checkpoint_start.pth"

    def _never_worse(self, final: dict) -> dict | None:
        """Keep the starting weights unless the guard's rule (training/guard.py) says fine-tuning made them better;
        under the rule 'witness', weights it turns down get a second chance as the halfway weights."""
        start = next((v for v in self.history["validation"] if v["iteration"] == 0), None)
        if start is None or not self._start_path.is_file():
            return None
        starting = load_checkpoint(self._start_path)["state_dict"]
        witness, scores = self._hidden_slice_witness(starting)
        validation = Signal(start["psnr"], final["psnr"])
        kept, reason = decide(self.config.guard, validation,
                              Signal(witness["start_psnr"], witness["final_psnr"], witness["margin_db"])
                              if witness else None, witness_expected=bool(self.witness_cases))
        if kept == "start" and witness and self.config.guard == "witness" and self.config.halfway_weights:
            kept, reason = self._halfway_or_start(starting, witness, scores, reason)
        if kept == "start":
            self.network.load_state_dict(starting)
        self._log(f"guard: kept the {KEPT_WORDS[kept]} weights (rule {self.config.guard}: {reason})")
        return {"kept": kept, "reason": reason, "rule": self.config.guard, "start_psnr": start["psnr"],
                "final_psnr": final["psnr"], **({"hidden_slices": witness} if witness else {})}

    def _halfway_or_start(self, starting: dict, witness: dict, scores: dict, reason: str) -> tuple[str, str]:
        """The witness turned the fine-tuned weights down: score the weights halfway between the start and them
        against the start, with their own margin. 'halfway' (loaded into the network) when their lead clears it, else
        'start'; the witness record gains `halfway`, and `per_case` describes the halfway weights if kept."""
        from isrnet.training.hidden_slice_witness import case_verdicts, hidden_slice_score, witness_margin
        halfway = weights_between(starting, {k: v.detach().cpu() for k, v in self.network.state_dict().items()})
        score = hidden_slice_score(self._network_with(halfway), scores["volumes"], self.config.device)
        if score is None:
            return "start", reason
        margin = witness_margin(scores["start"], score, self.config.witness_margin)
        signal = Signal(scores["start"].psnr, score.psnr, margin)
        witness["halfway"] = {"psnr": score.psnr, "margin_db": margin, "says": signal.says}
        self._log(f"guard's witness, halfway weights: {score.psnr:.2f} dB, start {scores['start'].psnr:.2f} dB, "
                  f"margin {margin:.2f} dB")
        reason = f"{reason}; halfway weights: {signal.text('hidden real slices')}"
        if signal.says == "start":
            return "start", reason
        self.network.load_state_dict(halfway)
        if len(score.case_psnr) > 1:
            witness["per_case"] = case_verdicts(scores["start"], score)
        return "halfway", reason

    def _network_with(self, state: dict) -> torch.nn.Module:
        """A network of this run's configuration holding the weights `state` (the witness scores other weights)."""
        return network_from_checkpoint({"network": self.config.network, "state_dict": state})

    def _hidden_slice_witness(self, starting: dict) -> tuple[dict | None, dict]:
        """The hidden-slice PSNR of the training cases with the starting and the final weights (None: no witness),
        and what a second look needs: {'start': its WitnessScore, 'volumes': the witness volumes}."""
        if not self.witness_cases or not self.distributed.is_main:
            return None, {}
        from isrnet.training.hidden_slice_witness import (case_verdicts, hidden_slice_score, witness_margin,
                                                          witness_volumes)
        began = time.time()
        volumes = witness_volumes(self.witness_cases)
        final = hidden_slice_score(self.network, volumes, self.config.device)
        start = hidden_slice_score(self._network_with(starting), volumes, self.config.device)
        if final is None or start is None:
            return None, {}
        margin = witness_margin(start, final, self.config.witness_margin)
        self._log(f"guard's witness (hidden real slices of {len(volumes)} training case(s), {final.slice_psnr.size} "
                  f"slices): {final.psnr:.2f} dB fine-tuned, {start.psnr:.2f} dB start"
                  f"{f', margin {margin:.2f} dB' if margin else ''} ({time.time() - began:.0f} s)")
        record = {"start_psnr": start.psnr, "final_psnr": final.psnr, "margin_db": margin,
                  "margin_standard_errors": self.config.witness_margin, "slices": int(final.slice_psnr.size),
                  "says": Signal(start.psnr, final.psnr, margin).says, "cases": len(volumes)}
        if len(final.case_psnr) > 1:  # one case: its verdict is the dataset's
            record["per_case"] = case_verdicts(start, final)
            for case, verdict in record["per_case"].items():
                self._log(f"guard's witness, {case}: fine-tuned {verdict['lead_db']:+.2f} dB against the start on "
                          f"its {verdict['slices']} hidden slices")
        return record, {"start": start, "volumes": volumes}

    # ---- training ---------------------------------------------------------------------------------------
    def _to_device(self, batch: dict) -> tuple[torch.Tensor, ...]:
        return tuple(torch.as_tensor(np.asarray(batch[key])).to(self.device)
                     for key in ("context", "positions", "targets", "conditioning"))

    def _train_step(self, model: torch.nn.Module, batch: dict) -> float:
        context, positions, targets, conditioning = self._to_device(batch)
        lr = scheduled_lr(self.config.lr, self.iteration, self.total or 1, self.config.warmup_fraction)
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

    def _measure_total(self, stream, model) -> None:
        """Time a few iterations (choosing torch's thread count on the way), then set the iteration count so the
        whole command fits the budget (it is re-estimated as the run goes, see _re_estimate)."""
        self.budget = IterationBudget(self.config.budget_minutes, self.command_start)
        self.history["loss"].append(self._train_step(model, next(stream)))  # pays for worker start-up, allocation
        per_iteration = self._choose_threads(stream, model)
        per_iteration += self._validation_per_iteration()
        self.total = self.distributed.broadcast_int(self.budget.total(self.iteration, per_iteration,
                                                                      self.validation_seconds))
        self.budget.start_window(self.iteration)
        self._log(f"budget {self.config.budget_minutes:g} min: {per_iteration:.3f} s per iteration measured "
                  f"-> {self.total} iterations (re-estimated every {RE_ESTIMATE_EVERY})")

    def _choose_threads(self, stream, model) -> float:
        """On a CPU, time THREAD_TRIAL iterations with torch's thread count and with one, and keep the faster:
        on an idle 2-core machine two threads win (1.25 vs 1.73 s/it here), with one more busy process one
        thread does (1.79 vs 2.36 s/it), because the sampling worker and the other process take cores that
        torch's threads then wait for. Returns the chosen count's seconds per iteration."""
        candidates = [torch.get_num_threads()] + ([1] if self.device.type == "cpu" and torch.get_num_threads() > 1
                                                 else [])
        timings = {}
        for threads in candidates:
            torch.set_num_threads(threads)
            started = time.time()
            for _ in range(THREAD_TRIAL):
                self.history["loss"].append(self._train_step(model, next(stream)))
            timings[threads] = (time.time() - started) / THREAD_TRIAL
        chosen = min(timings, key=timings.get)
        torch.set_num_threads(chosen)
        self.threads = {"chosen": chosen, "seconds_per_iteration": {str(k): round(v, 3) for k, v in timings.items()}}
        if len(timings) > 1:
            self._log(f"torch threads: {chosen} ({', '.join(f'{k}: {v:.3f} s/it' for k, v in timings.items())})")
        return timings[chosen]

    def _validation_per_iteration(self) -> float:
        """Validation's cost spread over the iterations between validations (the budget charges it at this rate)."""
        return self.validation_seconds / max(self.config.validation_every, 1)

    def _re_estimate(self, bar) -> None:
        """Follow the machine's current speed: a new count from the throughput since the last estimate."""
        if self.budget is None or self.iteration >= self.total:  # the run ends here: do not stretch it by a few
            return
        total = self.budget.re_estimate(self.iteration, self._validation_per_iteration(), self.validation_seconds)
        if total is None:
            return
        total = self.distributed.broadcast_int(total)  # every rank trains rank 0's count
        if abs(total - self.total) >= max(2, 0.02 * self.total):  # the log says when the machine's speed changed
            self._log(f"iteration {self.iteration}: {self.budget.history[-1][2]:.3f} s per iteration lately -> "
                      f"{total} iterations in all (was {self.total})")
        self.total = bar.total = total  # every estimate is in debug.json

    def _write_debug(self, seconds: float) -> None:
        if self.distributed.is_main:
            RunRecord(config=self.config.to_dict(), initial_weights=self.initialisation.description,
                      initial_weights_path=self.initialisation.path, iterations=self.total,
                      iterations_done=self.iteration, world_size=self.distributed.world_size,
                      seconds_this_command=round(seconds, 1),
                      budget_estimates=self.budget.history if self.budget else [], guard=self.guard,
                      threads=self.threads,
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
        self.validation_seconds = time.time() - start_validation
        stream = batches(self.train_sampler, config.batch_size, config.patch_size, config.seed, self.iteration,
                         config.workers, self.distributed.rank)
        self.network.train()
        threads = torch.get_num_threads()
        try:
            if self.total is None:
                self._measure_total(stream, model)
            self._write_debug(time.time() - self.command_start)
            self._loop(stream, model, validation)
        finally:
            stream.close()
            torch.set_num_threads(threads)  # the caller's setting (the run's choice is in debug.json)
        if not self.history["validation"] or self.history["validation"][-1]["iteration"] != self.iteration:
            self.history["validation"].append(self.validate(validation))
        final = self.history["validation"][-1]  # the loop validates at its last iteration: not twice
        self._save("latest")
        self.guard = self._never_worse(final)
        self._save("final")
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
                    self.validation_seconds = time.time() - started_validation
                    if self.budget is not None:
                        self.budget.exclude(self.validation_seconds)
                if self.iteration % RE_ESTIMATE_EVERY == 0:
                    self._re_estimate(bar)
                if time.time() - last_save >= config.checkpoint_every_seconds:
                    self._save("latest")
                    last_save = time.time()
