"""The never-worse guard's rules (training/guard.py): which signals decide."""
from __future__ import annotations

import pytest

from isrnet.errors import IsrnetError
from isrnet.training.guard import Signal, decide

BETTER, WORSE = Signal(20.0, 20.5), Signal(20.0, 19.8)


@pytest.mark.parametrize("rule, validation, witness, kept", [
    ("validation", BETTER, WORSE, "fine-tuned"), ("validation", WORSE, BETTER, "start"),
    ("witness", BETTER, WORSE, "start"), ("witness", WORSE, BETTER, "fine-tuned"),
    ("validation+witness", BETTER, WORSE, "start"), ("validation+witness", WORSE, BETTER, "start"),
    ("validation+witness", BETTER, BETTER, "fine-tuned"),
])
def test_each_rule_listens_to_its_signals(rule, validation, witness, kept) -> None:
    assert decide(rule, validation, witness)[0] == kept


def test_a_stage_without_witness_cases_is_decided_by_its_validation_and_the_reason_says_so() -> None:
    for rule in ("witness", "validation+witness"):
        kept, reason = decide(rule, WORSE, None)
        assert kept == "start" and "validation alone" in reason
        assert decide(rule, BETTER, None)[0] == "fine-tuned"


def test_a_run_whose_witness_could_not_be_scored_keeps_its_start_under_the_witness_rules() -> None:
    for rule in ("witness", "validation+witness"):
        kept, reason = decide(rule, BETTER, None, witness_expected=True)
        assert kept == "start" and "too few slices" in reason and "training.guard=validation" in reason
    assert decide("validation", BETTER, None, witness_expected=True)[0] == "fine-tuned"
    assert "hidden real slices 19.80 dB < the start's 20.00 dB" in decide("witness", BETTER, WORSE)[1]
    with pytest.raises(IsrnetError, match="training.guard 'oracle' is unknown"):
        decide("oracle", BETTER, None)


def test_a_margin_asks_the_final_weights_to_lead_by_it() -> None:
    assert Signal(20.0, 20.1, margin=0.2).says == "start" and Signal(20.0, 20.3, margin=0.2).says == "fine-tuned"
    kept, reason = decide("witness", BETTER, Signal(20.0, 20.1, margin=0.2))
    assert kept == "start" and "20.10 dB < the start's 20.00 dB + 0.20 dB margin" in reason
