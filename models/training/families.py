"""Model families: how to build each estimator, whether it wants scaled inputs, and its tuning space.

    lr   LogisticRegression (classification) / Ridge (regression)
    rf   RandomForest
    gb   GradientBoosting
    hgb  HistGradientBoosting — gated: skl2onnx 1.20 cannot convert it, so it is skipped unless a probe
         export succeeds (see `export.probe_family`)

Class weights: for an imbalanced binary target (minority under 20 %) lr and rf start with balanced class
weights, and the search may switch them off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scipy.stats import loguniform, randint
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from models.training.errors import TrainUsageError

Maker = Callable[[str, int, bool], BaseEstimator]  # (task, seed, imbalanced) -> unfitted estimator
Space = Callable[[str], dict[str, Any]]  # task -> {param: distribution or list}


@dataclass(frozen=True, slots=True)
class Family:
    key: str
    scaled: bool  # numeric inputs standardized (linear models); trees take them as they are
    make: Maker
    space: Space

    def label(self, task: str) -> str:
        return type(self.make(task, 0, False)).__name__


def _lr(task: str, seed: int, imbalanced: bool) -> BaseEstimator:
    if task == "regression":
        return Ridge(alpha=1.0)
    return LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced" if imbalanced else None)


def _lr_space(task: str) -> dict[str, Any]:
    if task == "regression":
        return {"alpha": loguniform(1e-3, 1e3)}
    return {"C": loguniform(1e-3, 1e2), "class_weight": [None, "balanced"]}


def _rf(task: str, seed: int, imbalanced: bool) -> BaseEstimator:
    if task == "regression":
        return RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    weight = "balanced_subsample" if imbalanced else None
    return RandomForestClassifier(
        n_estimators=100, min_samples_leaf=2, class_weight=weight, random_state=seed, n_jobs=1
    )


def _rf_space(task: str) -> dict[str, Any]:
    space: dict[str, Any] = {
        "n_estimators": randint(50, 301),
        "max_depth": [None, 6, 10, 16],
        "min_samples_leaf": randint(1, 11),
        "max_features": ["sqrt", 0.5, 1.0],
    }
    if task == "classification":
        space["class_weight"] = [None, "balanced_subsample"]
    return space


def _gb(task: str, seed: int, imbalanced: bool) -> BaseEstimator:
    cls = GradientBoostingRegressor if task == "regression" else GradientBoostingClassifier
    return cls(n_estimators=100, learning_rate=0.1, max_depth=3, random_state=seed)


def _gb_space(task: str) -> dict[str, Any]:
    return {
        "n_estimators": randint(50, 301),
        "learning_rate": loguniform(0.01, 0.3),
        "max_depth": randint(2, 6),
        "subsample": [1.0, 0.8],
    }


def _hgb(task: str, seed: int, imbalanced: bool) -> BaseEstimator:
    if task == "regression":
        return HistGradientBoostingRegressor(max_iter=100, random_state=seed)
    return HistGradientBoostingClassifier(
        max_iter=100, class_weight="balanced" if imbalanced else None, random_state=seed
    )


def _hgb_space(task: str) -> dict[str, Any]:
    return {"max_iter": randint(50, 301), "learning_rate": loguniform(0.01, 0.3), "max_leaf_nodes": randint(8, 64)}


FAMILIES: dict[str, Family] = {
    "lr": Family("lr", True, _lr, _lr_space),
    "rf": Family("rf", False, _rf, _rf_space),
    "gb": Family("gb", False, _gb, _gb_space),
    "hgb": Family("hgb", False, _hgb, _hgb_space),
}


def parse_models(text: str) -> tuple[str, ...]:
    """'lr,rf,gb' → ('lr', 'rf', 'gb'); aliases: ridge/logreg → lr. UsageError for an unknown family."""
    alias = {"ridge": "lr", "logreg": "lr", "logistic": "lr", "forest": "rf", "gbm": "gb"}
    keys: list[str] = []
    for raw in text.split(","):
        key = alias.get(raw.strip().lower(), raw.strip().lower())
        if not key:
            continue
        if key not in FAMILIES:
            msg = f"unknown model family {raw.strip()!r} in --models: use {', '.join(FAMILIES)}"
            raise TrainUsageError(msg)
        if key not in keys:
            keys.append(key)
    return tuple(keys)
