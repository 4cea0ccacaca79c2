"""Batch training and validation: `train(TrainConfig(...))` → report, ONNX export with parity, registry entry.

The modules, one concept each: load (sources), columns (type inference, the feature definition), target,
families, features (the sklearn pipeline), validation (split, folds, CV), metrics, threshold, tuning,
export (ONNX + parity), online (River counterpart) and online_codec (its snapshot), report / report_html /
plots, publish (registry + files), runner (the whole run), datasets (bundled public data).
"""

from models.training.config import PcaOption, TrainConfig
from models.training.runner import TrainResult, train

__all__ = ["PcaOption", "TrainConfig", "TrainResult", "train"]
