"""Evaluate predictions against references (files or folders matched by case name) -> CSV + summary JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from isrnet.datasets import list_cases
from isrnet.errors import IsrnetError
from isrnet.evaluation.metrics import compare
from isrnet.imageio import read_volume
from isrnet.imageio.formats import sidecar_of
from isrnet.utilities.files import atomic_write_text, save_json


def _cases(path: Path) -> dict[str, Path]:
    if path.is_file():
        from isrnet.datasets import case_name
        return {case_name(path): path}
    if path.is_dir():
        return list_cases(path)
    raise IsrnetError(f"{path}: no such file or folder")


def _input_positions(prediction_path: Path) -> tuple[int | None, np.ndarray | None]:
    """Slice axis and world positions of the input slices, from the prediction's JSON sidecar."""
    sidecar = sidecar_of(prediction_path)
    if not sidecar.is_file():
        return None, None
    content = json.loads(sidecar.read_text())
    if "slice_axis" not in content or "input_positions" not in content:
        return None, None
    return int(content["slice_axis"]), np.asarray(content["input_positions"])


def evaluate_folders(reference: Path, prediction: Path) -> pd.DataFrame:
    """One row per case present in both (by name)."""
    references, predictions = _cases(reference), _cases(prediction)
    common = sorted(set(references) & set(predictions))
    if not common:
        raise IsrnetError(f"no case names in common between {reference} ({len(references)} cases) and "
                          f"{prediction} ({len(predictions)} cases)")
    rows = []
    for case in common:
        axis, positions = _input_positions(predictions[case])
        metrics = compare(read_volume(predictions[case]), read_volume(references[case]), axis, positions)
        rows.append({"case": case, **metrics})
    return pd.DataFrame(rows)


def write_results(table: pd.DataFrame, output: Path) -> dict:
    """`<output>.csv` (per case) and `<output>.json` (means); returns the summary."""
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table.to_csv(index=False, float_format="%.4f"), output.with_suffix(".csv"))
    numeric = table.drop(columns=["case"]).select_dtypes("number")
    summary = {"cases": len(table), "mean": numeric.mean().round(4).to_dict(),
               "data_range": "99.9th percentile - minimum of the reference inside the foreground mask",
               "synthesised": "reference slices farther than 1/4 spacing from every input slice"}
    save_json(summary, output.with_suffix(".json"))
    return summary
