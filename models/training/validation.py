"""Validation: a held-back test split, then k-fold CV on the rest, with the stratification checked.

Classification always uses `StratifiedKFold` (and a stratified test split); each validation fold's class
shares are reported and must sit within ±1 percentage point of the overall share (for folds under 100
rows the bound is one row's worth, 100/rows pp, which is what whole rows allow). Regression uses `KFold`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np
import polars as pl
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from models.training.errors import DataError
from models.training.metrics import classification_metrics, regression_metrics

Folds = list[tuple[np.ndarray, np.ndarray]]


class FoldBalance(msgspec.Struct, frozen=True, kw_only=True):
    fold: int
    rows: int
    positive_rate: float  # binary: share of the positive class; multiclass: share of the rarest class
    overall_rate: float
    deviation_pp: float  # largest |fold share - overall share| over the classes, in percentage points
    tolerance_pp: float
    within_1pp: bool


@dataclass(frozen=True, slots=True)
class CvRun:
    fold_metrics: list[dict[str, float]]
    oof: np.ndarray  # out-of-fold predictions: (n, k) probabilities or (n,) values
    fit_seconds: list[float]


def holdout_split(
    y: np.ndarray, task: str, test_size: float, seed: int, labels: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y))
    if task == "classification":
        _require_support(y, 2, labels, "a stratified test split (2 needed)", "add rows of that class or drop it")
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    else:
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed)
    return np.sort(tr), np.sort(te)


def make_folds(y: np.ndarray, task: str, k: int, seed: int, labels: tuple[str, ...] = ()) -> Folds:
    if len(y) < 2 * k:
        msg = f"{len(y)} training rows cannot make {k} folds: lower --folds or add rows"
        raise DataError(msg)
    if task == "classification":
        fix = f"lower --folds to {max(2, int(np.bincount(y).min()))} or add rows"
        _require_support(y, k, labels, f"{k} stratified folds (every fold needs one)", fix)
        splitter: StratifiedKFold | KFold = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y)]


def fold_balance(y: np.ndarray, folds: Folds, n_classes: int) -> list[FoldBalance]:
    """Each validation fold's class shares against the overall ones; DataError if one is out of bounds."""
    overall = np.bincount(y, minlength=n_classes) / len(y)
    focus = 1 if n_classes == 2 else int(np.argmin(overall))
    out = []
    for i, (_, va) in enumerate(folds):
        share = np.bincount(y[va], minlength=n_classes) / len(va)
        dev = float(np.abs(share - overall).max() * 100)
        tol = max(1.0, 100.0 / len(va))
        out.append(
            FoldBalance(
                fold=i,
                rows=len(va),
                positive_rate=float(share[focus]),
                overall_rate=float(overall[focus]),
                deviation_pp=dev,
                tolerance_pp=tol,
                within_1pp=dev <= 1.0 + 1e-9,
            )
        )
        if dev > tol + 1e-9:
            msg = f"fold {i} class shares are {dev:.2f} pp off the overall ones (> {tol:.2f}): stratification failed"
            raise DataError(msg)
    return out


def cross_validate(
    pipeline: Pipeline, X: pl.DataFrame, y: np.ndarray, folds: Folds, task: str, n_classes: int, jobs: int = 1
) -> CvRun:
    """Fit a clone per fold, predict its validation rows; metrics per fold and the out-of-fold predictions."""
    results = Parallel(n_jobs=jobs)(delayed(_fit_predict)(clone(pipeline), X, y, tr, va, task) for tr, va in folds)
    oof = np.zeros((len(y), n_classes)) if task == "classification" else np.zeros(len(y))
    fold_metrics, seconds = [], []
    for (_, va), (pred, secs) in zip(folds, results, strict=True):
        oof[va] = pred
        score: Callable[[np.ndarray, np.ndarray], dict[str, float]] = (
            classification_metrics if task == "classification" else regression_metrics
        )
        fold_metrics.append(score(y[va], pred))
        seconds.append(secs)
    return CvRun(fold_metrics, oof, seconds)


def _fit_predict(
    pipe: Pipeline, X: pl.DataFrame, y: np.ndarray, tr: np.ndarray, va: np.ndarray, task: str
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    pipe.fit(X[tr], y[tr])
    seconds = time.perf_counter() - start
    pred = pipe.predict_proba(X[va]) if task == "classification" else pipe.predict(X[va])
    return np.asarray(pred, dtype=np.float64), seconds


def _require_support(y: np.ndarray, k: int, labels: tuple[str, ...], what: str, fix: str) -> None:
    counts = np.bincount(y, minlength=len(labels))
    rare = int(np.argmin(counts))
    if counts[rare] < k:
        name = repr(labels[rare]) if labels else f"code {rare}"
        msg = f"class {name} has only {counts[rare]} rows, too few for {what}; {fix}"
        raise DataError(msg)
