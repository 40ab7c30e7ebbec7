"""Prediction: the network over whole volumes with exact output geometry.

Entry points: `predict_paths(inputs, output, model, PredictOptions(...))` for files and folders, `Predictor`
(in memory; `Predictor.from_run(folder)`), `resolve_model(dataset, stage, path)`.
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"predict_paths": "path_prediction", "PredictOptions": "path_prediction", "CaseResult": "path_prediction",
          "Predictor": "predictor", "PredictionSettings": "predictor", "resolve_model": "model_resolution",
          "Model": "model_resolution", "OutputFormat": "outputs", "Prediction": "predictor"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
