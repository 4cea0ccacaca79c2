"""Hyperparameter tuning: a seeded randomized search over a family's space within a budget of N candidates.

The search scores candidates on the same folds as the CV that follows (same seed → same folds → same
pick). Its score is optimistic (the pick is made on those folds); the held-back test split is the honest
number, and the report says so.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import polars as pl
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import Pipeline

from models.training.families import Family
from models.training.validation import Folds

Param = str | int | float | bool | None


class SearchSummary(msgspec.Struct, frozen=True, kw_only=True):
    candidates: int
    scoring: str
    best_score: float
    best_params: dict[str, Param]
    method: str = "RandomizedSearchCV"


def search(
    pipeline: Pipeline,
    family: Family,
    task: str,
    X: pl.DataFrame,
    y: np.ndarray,
    folds: Folds,
    *,
    n_iter: int,
    scoring: str,
    seed: int,
    jobs: int = 1,
) -> SearchSummary:
    space = {f"model__{k}": v for k, v in family.space(task).items()}
    rs = RandomizedSearchCV(
        pipeline,
        space,
        n_iter=n_iter,
        scoring=scoring,
        cv=folds,
        random_state=seed,
        n_jobs=jobs,
        refit=False,
        error_score="raise",
    )
    rs.fit(X, y)
    best = {k.removeprefix("model__"): plain(v) for k, v in rs.best_params_.items()}
    return SearchSummary(candidates=n_iter, scoring=scoring, best_score=float(rs.best_score_), best_params=best)


def plain(value: Any) -> Param:
    """numpy scalars → Python scalars (for JSON and manifests)."""
    if isinstance(value, np.generic):
        return value.item()  # type: ignore[no-any-return]  # numpy types item() as Any
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
