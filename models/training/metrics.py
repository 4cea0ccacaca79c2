"""Metrics, computed one way for CV folds, the test split and the online model.

Classification: accuracy, precision, recall, f1, roc_auc, pr_auc (average precision); binary at a decision
threshold on the positive probability, multiclass by argmax with macro averages. Regression: mse, rmse,
mae, r2. `primary_metric` picks the one model selection ranks by.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

REGRESSION = ("mse", "rmse", "mae", "r2")
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae", "log_loss"})
IMBALANCED_SHARE = 0.2
SCORERS = {"roc_auc": "roc_auc", "pr_auc": "average_precision", "rmse": "neg_root_mean_squared_error"}


def is_imbalanced(class_counts: tuple[int, ...]) -> bool:
    return len(class_counts) == 2 and min(class_counts) < IMBALANCED_SHARE * sum(class_counts)


def primary_metric(task: str, class_counts: tuple[int, ...] = ()) -> str:
    if task == "regression":
        return "rmse"
    return "pr_auc" if is_imbalanced(class_counts) else "roc_auc"


def scorer(metric: str, n_classes: int) -> str:
    """The scikit-learn scoring name for a primary metric (for the randomized search)."""
    if metric == "roc_auc" and n_classes > 2:
        return "roc_auc_ovr"
    if metric == "pr_auc" and n_classes > 2:
        return "average_precision"  # macro over classes
    return SCORERS[metric]


def better(metric: str, a: float, b: float) -> bool:
    """Is score `a` better than `b` for `metric`?"""
    return a < b if metric in LOWER_IS_BETTER else a > b


def predict_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    if proba.shape[1] == 2:
        return (proba[:, 1] >= (0.5 if threshold is None else threshold)).astype(np.int64)
    return proba.argmax(axis=1)


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """`proba` is (n, k) with column i = probability of class code i."""
    k = proba.shape[1]
    pred = predict_labels(proba, threshold)
    avg = "binary" if k == 2 else "macro"
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average=avg, zero_division=0, labels=range(k) if k > 2 else None),
        "recall": skm.recall_score(y, pred, average=avg, zero_division=0, labels=range(k) if k > 2 else None),
        "f1": skm.f1_score(y, pred, average=avg, zero_division=0, labels=range(k) if k > 2 else None),
    }
    if k == 2:
        out["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
        out["pr_auc"] = skm.average_precision_score(y, proba[:, 1])
    else:
        onehot = np.eye(k)[y]
        out["roc_auc"] = skm.roc_auc_score(onehot, proba, average="macro")
        out["pr_auc"] = skm.average_precision_score(onehot, proba, average="macro")
    clipped = np.clip(proba, 1e-15, 1.0)
    out["log_loss"] = skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=range(k))
    return {name: float(v) for name, v in out.items()}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    mse = float(skm.mean_squared_error(y, pred))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
    }


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> list[list[int]]:
    """Rows = true class code, columns = predicted class code."""
    return skm.confusion_matrix(y, pred, labels=range(k)).astype(int).tolist()


def mean_std(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    names = folds[0].keys()
    mean = {n: float(np.mean([f[n] for f in folds])) for n in names}
    std = {n: float(np.std([f[n] for f in folds])) for n in names}
    return mean, std
