"""The guard's witness: real slices of the training cases hidden and predicted.

The validation pairs are *simulated* and cannot see a mismatch between the simulation and the real slice axis.
This witness looks at the real slice axis: every 2nd real slice of (a central slab of) the largest training cases
is hidden, the rest predicted with the starting and with the fine-tuned weights, and each is scored as the
hidden-slice evaluation scores methods (evaluation/hidden_slices.py: PSNR at the best blur width, so a network that
restores thin slices is not penalised by the thick real ones). It only uses what the training cases hold. It is
recorded in debug.json (`guard.hidden_slices`); under the rules `witness` (the default) and `validation+witness`
(training/guard.py) it decides whether the fine-tuned weights are kept. benchmarks/real_scans.py and
ssft_mismatch_set.py measure both signals against judges that never saw what they see.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from isrnet.acquisition.slice_profile import ProfileSource, profile_of
from isrnet.errors import IsrnetError
from isrnet.evaluation.hidden_slices import score_output, thin_case
from isrnet.imageio.geometry import factor_of
from isrnet.imageio.volume import Volume

MAX_CASES = 4  # the largest training cases are witnesses
MAX_SLICES = 25  # a central slab of each, along its slice axis (the witness's cost stays small)
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


def hidden_slice_psnr(network: torch.nn.Module, volumes: list[tuple[str, Volume, float]],
                      device: str = "cpu") -> float | None:
    """Mean hidden-slice PSNR (dB, best blur width) of `network` over `volumes`; None when none can be thinned."""
    from isrnet.inference.predictor import PredictionSettings, Predictor
    predictor = Predictor(network, "the guard's witness", device)
    scores = []
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
        scores.append(score_output(case, output).psnr)
    return float(np.mean(scores)) if scores else None
