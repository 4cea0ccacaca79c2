"""The feature pipeline: one scikit-learn `Pipeline` from the prepared frame to the estimator.

    pre    ColumnTransformer
           ├── num  SimpleImputer(median) [→ StandardScaler for linear models or PCA]
           └── cat  OneHotEncoder over each column's known levels (unknown values → all zeros)
    pca    PCA (optional: 95 % of the variance, or K components)
    model  the family's estimator

The whole thing is what gets exported to ONNX, so training and serving share one feature definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.training.columns import ColumnPlan, features
from models.training.config import PcaOption
from models.training.errors import TrainUsageError
from models.training.families import Family


def encoded_width(plans: list[ColumnPlan]) -> int:
    """How many columns the preprocessor produces (numeric + one per categorical level)."""
    return sum(1 if p.kind == "numeric" else len(p.levels) for p in features(plans))


def preprocessor(plans: list[ColumnPlan], *, scale: bool) -> ColumnTransformer:
    kept = features(plans)
    numeric = [p.name for p in kept if p.kind == "numeric"]
    categorical = [p for p in kept if p.kind == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        impute = SimpleImputer(strategy="median")
        num = Pipeline([("impute", impute), ("scale", StandardScaler())]) if scale else impute
        parts.append(("num", num, numeric))
    if categorical:
        onehot = OneHotEncoder(
            categories=[list(p.levels) for p in categorical],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
        parts.append(("cat", onehot, [p.name for p in categorical]))
    return ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=True)


def build_pipeline(
    plans: list[ColumnPlan],
    family: Family,
    task: str,
    *,
    pca: PcaOption,
    seed: int,
    imbalanced: bool = False,
    params: dict[str, Any] | None = None,
) -> Pipeline:
    """An unfitted pipeline; `params` are the estimator's (un-prefixed) hyperparameters."""
    steps: list[tuple[str, Any]] = [("pre", preprocessor(plans, scale=family.scaled or pca.mode != "off"))]
    if pca.mode != "off":
        width = encoded_width(plans)
        if pca.mode == "fixed" and pca.components > width:
            msg = f"--pca {pca.components} exceeds the {width} encoded features: use at most {width}, or auto"
            raise TrainUsageError(msg)
        n_components: float | int = 0.95 if pca.mode == "auto" else pca.components
        steps.append(("pca", PCA(n_components=n_components, svd_solver="full", random_state=seed)))
    model = family.make(task, seed, imbalanced)
    if params:
        model.set_params(**params)
    steps.append(("model", model))
    return Pipeline(steps)
