"""The online counterpart: a River pipeline trained on the same rows in arrival order.

    numeric columns     → StandardScaler ┐
    categorical columns → OneHotEncoder  ┴→ LogisticRegression (binary) | one-vs-rest LogisticRegression
                                            (multiclass) | LinearRegression on a standardized target

Progressive validation: each row is first predicted, then learned, so every prediction is on an unseen
row; the metrics are the same functions the batch model is scored with. Rows are the prepared features
(one feature definition): NaN numbers and "" strings are missing and left out of the row's dict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import polars as pl
from river import compose, linear_model, multiclass, optim, preprocessing

from models.training.columns import ColumnPlan, features
from models.training.metrics import classification_metrics, regression_metrics

LEARNING_RATE = {"classification": 0.05, "regression": 0.01}  # SGD steps; larger diverges on a scaled target


class OnlineSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the online pipeline is made of; enough to rebuild it empty."""

    task: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    n_classes: int = 0
    learning_rate: float = 0.05


class OnlineResult(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    metrics: dict[str, float]
    seconds: float
    rows_per_s: float
    model: str
    method: str = "progressive validation (predict, then learn), in arrival order"


@dataclass
class OnlineModel:
    """The River pipeline plus handles on its stateful parts (for the snapshot codec)."""

    spec: OnlineSpec
    pipeline: Any
    scaler: preprocessing.StandardScaler | None
    head: Any  # LogisticRegression | OneVsRestClassifier | TargetStandardScaler

    def proba(self, x: dict[str, Any]) -> list[float]:
        p = self.pipeline.predict_proba_one(x)
        if self.spec.n_classes == 2:
            return [1.0 - p.get(True, 0.5), p.get(True, 0.5)]
        k = self.spec.n_classes
        return [p.get(c, 1.0 / k) for c in range(k)]

    def predict(self, x: dict[str, Any]) -> float:
        return float(self.pipeline.predict_one(x))

    def learn(self, x: dict[str, Any], y: Any) -> None:
        self.pipeline.learn_one(x, bool(y) if self.spec.n_classes == 2 else y)


def build_online(spec: OnlineSpec) -> OnlineModel:
    parts = []
    if spec.numeric:
        scaler = preprocessing.StandardScaler()
        parts.append(compose.FuncTransformer(_picker("numeric", spec.numeric)) | scaler)
    if spec.categorical:
        onehot = preprocessing.OneHotEncoder(drop_zeros=True)
        parts.append(compose.FuncTransformer(_picker("categorical", spec.categorical)) | onehot)
    feats = parts[0] if len(parts) == 1 else compose.TransformerUnion(*parts)
    lr = spec.learning_rate
    if spec.task == "regression":
        head: Any = preprocessing.TargetStandardScaler(linear_model.LinearRegression(optimizer=optim.SGD(lr)))
    elif spec.n_classes == 2:
        head = linear_model.LogisticRegression(optimizer=optim.SGD(lr))
    else:
        head = multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.SGD(lr)))
    pipeline = feats | head
    head = list(pipeline.steps.values())[-1]
    return OnlineModel(spec, pipeline, _find(pipeline, preprocessing.StandardScaler), head)


def _picker(label: str, keys: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Select `keys` from a row; a missing one stays missing (after scaling it counts as the running mean)."""

    def pick(x: dict[str, Any]) -> dict[str, Any]:
        return {k: x[k] for k in keys if k in x}

    pick.__name__ = f"select_{label}"
    return pick


def _find(step: Any, kind: type) -> Any:
    """The first `kind` inside a River pipeline/union (composition copies steps, so look after building)."""
    if type(step) is kind:  # River pipelines answer isinstance() for their last step
        return step
    children = getattr(step, "steps", None) or getattr(step, "transformers", None) or {}
    for child in children.values():
        found = _find(child, kind)
        if found is not None:
            return found
    return None


def spec_for(plans: list[ColumnPlan], task: str, n_classes: int) -> OnlineSpec:
    kept = features(plans)
    return OnlineSpec(
        task=task,
        numeric=tuple(p.name for p in kept if p.kind == "numeric"),
        categorical=tuple(p.name for p in kept if p.kind == "categorical"),
        n_classes=n_classes if task == "classification" else 0,
        learning_rate=LEARNING_RATE[task],
    )


def rows(X: pl.DataFrame) -> list[dict[str, Any]]:
    """Prepared rows as River dicts, missing values left out."""
    out = []
    for row in X.iter_rows(named=True):
        out.append({k: v for k, v in row.items() if v is not None and v == v and v != ""})
    return out


def progressive_validation(model: OnlineModel, X: pl.DataFrame, y: np.ndarray) -> OnlineResult:
    """Predict each row, then learn it; metrics over every prediction."""
    xs = rows(X)
    start = time.perf_counter()
    if model.spec.task == "regression":
        pred = np.empty(len(xs))
        for i, (x, t) in enumerate(zip(xs, y.tolist(), strict=True)):
            pred[i] = model.predict(x)
            model.learn(x, t)
        metrics = regression_metrics(y, pred)
    else:
        proba = np.empty((len(xs), model.spec.n_classes))
        for i, (x, t) in enumerate(zip(xs, y.tolist(), strict=True)):
            proba[i] = model.proba(x)
            model.learn(x, t)
        metrics = classification_metrics(y, proba)
    seconds = time.perf_counter() - start
    return OnlineResult(
        rows=len(xs),
        metrics=metrics,
        seconds=seconds,
        rows_per_s=len(xs) / seconds if seconds else 0.0,
        model=type(model.head).__name__,
    )
