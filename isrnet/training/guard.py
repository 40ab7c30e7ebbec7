"""The never-worse guard: which weights a run that started from weights ends with (the start or its own).

It decides on up to two signals, each the PSNR of the starting and of the final weights:
- validation: the stage's held-out pairs (for ssft: in-plane degradations simulated with the case's profile), which
  cannot see a mismatch between the simulation and the real slice axis;
- witness: hidden real slices of the training cases (training/hidden_slice_witness.py), scored at the best blur;
  with `training.witness_margin` > 0 (default 1.645) it says "fine-tuned" only when their lead reaches that many
  standard errors of the per-slice differences, so that a few hidden slices cannot keep worse weights by chance.

Rules (plans key `training.guard`; what each measured: documentation/training.md):
  validation           keep the fine-tuned weights when their validation PSNR is not below the start's
  witness              ... when the witness's is not below the start's
  validation+witness   ... when neither is below the start's
Under the rule `witness`, fine-tuned weights the witness turns down get a second chance as the weights halfway
between the start and them (`weights_between`, the mean of the two; plans key `training.halfway_weights`, default on):
kept when the witness's lead for them, against the start, clears its own margin. Fine-tuning often overshoots on
one scan, and the halfway weights keep much of its gain at less risk (documentation/training.md measures it on real
scans).
Under both witness rules, a run whose cases should have a witness (ssft, --adapt-minutes) but where none could be
scored (stacks too short to hide slices of) keeps its start: nothing real can say the fine-tuned weights are better.
A stage without witness cases (mrft from video weights) is decided by the validation alone; the reason says which.
The decision is one for the dataset; each witness case's own lead is recorded beside it, and a training case whose
own hidden slices score the kept fine-tuned weights below the start is predicted with the start
(hidden_slice_witness.case_verdicts, inference/predictor.py `Predictor.for_case`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from isrnet.configuration import GUARD_RULES
from isrnet.errors import IsrnetError


@dataclass(frozen=True)
class Signal:
    """One signal's PSNR (dB) of the starting and of the final weights, and the lead (dB) the final weights need."""
    start: float
    final: float
    margin: float = 0.0

    @property
    def says(self) -> str:
        return "start" if self.final < self.start + self.margin else "fine-tuned"

    def text(self, name: str) -> str:
        margin = f" + {self.margin:.2f} dB margin" if self.margin else ""
        return (f"{name} {self.final:.2f} dB {'<' if self.says == 'start' else '>='} the start's {self.start:.2f} dB"
                f"{margin}")


def check_guard(rule: str) -> None:
    if rule not in GUARD_RULES:
        raise IsrnetError(f"training.guard '{rule}' is unknown; use one of {', '.join(GUARD_RULES)}")


KEPT_WORDS = {"start": "starting", "fine-tuned": "fine-tuned",
              "halfway": "halfway"}  # debug.json's guard.kept -> the log's "kept the ... weights"

NO_WITNESS = ("no real slices of these cases could be hidden and scored (too few slices), so nothing real says the "
              "fine-tuned weights are better; --set training.guard=validation lets the simulated validation decide")


HALFWAY = 0.5  # the share of the way from the start to the fine-tuned weights that the second chance tries


def weights_between(start: dict[str, torch.Tensor], final: dict[str, torch.Tensor],
                    share: float = HALFWAY) -> dict[str, torch.Tensor]:
    """The weights `share` of the way from `start` to `final` (state dicts of one network): (1 - share) x start +
    share x final for each floating-point tensor; any other (counters) taken from `final`."""
    return {name: (1 - share) * start[name] + share * tensor if tensor.is_floating_point() else tensor.clone()
            for name, tensor in final.items()}


def decide(rule: str, validation: Signal, witness: Signal | None,
           witness_expected: bool = False) -> tuple[str, str]:
    """('start' | 'fine-tuned', the reason in words) under `rule`; `witness_expected`: the run had cases for a witness
    (ssft, adaptation), so a missing witness keeps the start under the witness rules."""
    check_guard(rule)
    signals = [("final validation PSNR", validation)]
    note = ""
    if rule != "validation" and witness is None:
        if witness_expected:
            return "start", NO_WITNESS
        note = " (no hidden-slice witness for this stage: validation alone)"
    elif rule == "witness":
        signals = [("hidden real slices", witness)]
    elif rule == "validation+witness":
        signals.append(("hidden real slices", witness))
    against = [(name, signal) for name, signal in signals if signal.says == "start"]
    shown = against or signals
    return ("start" if against else "fine-tuned"), "; ".join(signal.text(name) for name, signal in shown) + note
