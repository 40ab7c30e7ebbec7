"""The guard's witness: real slices of the training cases hidden and predicted.

The validation pairs are *simulated* and cannot see a mismatch between the simulation and the real slice axis.
This witness looks at the real slice axis: every 2nd real slice of (a central slab of) the largest training cases
is hidden, the rest predicted with the starting and with the fine-tuned weights, and each is scored as the
hidden-slice evaluation scores methods (evaluation/hidden_slices.py: PSNR at the best blur width, so a network that
restores thin slices is not penalised by the thick real ones). It only uses what the training cases hold. It is
recorded in debug.json (`guard.hidden_slices`); under the rules `witness` (the default) and `validation+witness`
(training/guard.py) it decides whether the fine-tuned weights are kept: they must lead the start, by a margin of
`training.witness_margin` standard errors of the per-slice differences (`witness_margin`;
default 1.645; 0 keeps any lead). Each witness case's own lead is recorded too (`per_case`): after a dataset
decision for the fine-tuned weights, a case whose own hidden slices score them below the start is predicted with the
start (inference/predictor.py, `for_case`). benchmarks/real_scans.py and ssft_mismatch_set.py measure the signals
against judges that never saw what they see.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from isrnet.acquisition.slice_profile import ProfileSource, profile_of
from isrnet.errors import IsrnetError
from isrnet.evaluation.hidden_slices import score_output, thin_case
from isrnet.evaluation.metrics import psnr
from isrnet.imageio.geometry import factor_of
from isrnet.imageio.volume import Volume

MAX_CASES = 4  # the largest training cases are witnesses
MAX_SLICES = 64  # a central slab of each, along its slice axis: most stacks whole (more hidden slices, a surer
# verdict; documentation/training.md), while a long series' cost stays small
KEEP_EVERY = 2


def witness_volumes(cases: list[tuple[np.ndarray, dict]]) -> list[tuple[str, Volume, float]]:
    """(case, slab as a slices-first Volume, slice thickness mm) of the largest preprocessed training cases (a time
    series: its first frame)."""
    chosen = sorted(cases, key=lambda case: -case[0].size)[:MAX_CASES]
    volumes = []
    for array, properties in chosen:
        frame = array[0] if array.ndim == 4 else array
        start = max(0, (frame.shape[0] - MAX_SLICES) // 2)
        spacing = tuple(float(s) for s in properties["spacing"])
        thickness = profile_of(properties.get("slice_profile"), spacing[0]).thickness_mm
        slab = np.ascontiguousarray(frame[start:start + MAX_SLICES], dtype=np.float32)
        volumes.append((str(properties["case"]), Volume(slab, spacing), thickness))
    return volumes


@dataclass(frozen=True)
class WitnessScore:
    """One network's hidden-slice scores over the witness volumes."""
    psnr: float  # mean over the volumes (dB, each at its best blur width)
    slice_psnr: np.ndarray  # per hidden slice with anatomy, every volume in order, at that volume's best width
    case_psnr: dict[str, float] = field(default_factory=dict)  # per witness case (dB, at its best blur width)
    case_slices: dict[str, int] = field(default_factory=dict)  # hidden slices scored per case


def hidden_slice_score(network: torch.nn.Module, volumes: list[tuple[str, Volume, float]],
                       device: str = "cpu") -> WitnessScore | None:
    """`network`'s hidden-slice PSNR over `volumes`, and per hidden slice; None when fewer than two hidden slices
    can be scored (none can be thinned, or too few for a margin)."""
    from isrnet.inference.predictor import PredictionSettings, Predictor
    predictor = Predictor(network, "the guard's witness", device)
    slices, case_psnr, case_slices = [], {}, {}
    for name, volume, thickness in volumes:
        try:
            case = thin_case(name, volume, 0, KEEP_EVERY)
            settings = PredictionSettings(factor=case.samples, thickness_mm=thickness, slice_axis=0,
                                          thickness_source=ProfileSource.PLANS,
                                          conditioning_factor=factor_of(case.thinned.spacing, 0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the told gap is twice the case's own: expected here
                output = predictor.predict(case.thinned, settings)
        except IsrnetError:  # too few slices, no anatomy in the removed ones, a factor refused: no witness here
            continue  # (it only records: a case it cannot judge must never fail the training run)
        score = score_output(case, output)
        truth = case.truth.astype(np.float64)
        scored = [psnr(score.estimate[i].astype(np.float64), truth[i], case.mask[i], case.data_range)
                  for i in range(len(truth)) if case.mask[i].any()]
        slices += scored
        case_psnr[name], case_slices[name] = float(score.psnr), len(scored)
    if len(slices) < 2:
        return None
    return WitnessScore(float(np.mean(list(case_psnr.values()))), np.array(slices), case_psnr, case_slices)


def case_verdicts(start: WitnessScore, final: WitnessScore) -> dict[str, dict]:
    """Per witness case, what its own hidden slices say of the fine-tuned weights: {'lead_db' (final - start),
    'slices', 'says'}. 'start' where they score the fine-tuned weights below the start (no margin: the dataset's
    lead already cleared one); after a dataset decision for the fine-tuned weights such a case is predicted with the
    start (Predictor.for_case)."""
    verdicts = {}
    for case, final_psnr in final.case_psnr.items():
        if case in start.case_psnr:
            lead = final_psnr - start.case_psnr[case]
            verdicts[case] = {"lead_db": round(lead, 4), "slices": final.case_slices.get(case, 0),
                              "says": "start" if lead < 0 else "fine-tuned"}
    return verdicts


def witness_margin(start: WitnessScore, final: WitnessScore, standard_errors: float) -> float:
    """The lead (dB) the final weights need over the start: `standard_errors` times the standard error of the
    per-slice differences (slices of one scan are not independent, so this is a floor on the real uncertainty)."""
    differences = final.slice_psnr - start.slice_psnr
    return float(standard_errors * differences.std(ddof=1) / np.sqrt(differences.size))
