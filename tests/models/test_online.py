"""The River counterpart: progressive validation and a snapshot codec that restores the exact model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.training import online_codec
from models.training.columns import infer_columns, prepare_features
from models.training.errors import TrainingError
from models.training.load import load_table
from models.training.online import build_online, progressive_validation, rows, spec_for
from models.training.target import encode_target


@pytest.fixture(scope="module")
def data(churn_csv: Path):  # type: ignore[no-untyped-def]
    table = load_table(str(churn_csv))
    y, _, _ = encode_target(table.frame, "churn")
    plans = infer_columns(table.frame, "churn")
    return plans, prepare_features(table.frame, plans), y


def _task(data, task: str):  # type: ignore[no-untyped-def]
    plans, X, y = data
    if task == "regression":
        return plans, X, X["tenure_months"].to_numpy().astype(float) * 2 + 1, 0
    if task == "multiclass":
        contract = ["Month-to-month", "One year", "Two year"]
        return (
            [p for p in plans if p.name != "contract"],
            X.drop("contract"),
            np.asarray([contract.index(v) for v in X["contract"]]),
            3,
        )
    return plans, X, y, 2


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_snapshot_round_trip_predicts_and_learns_identically(data, task: str) -> None:  # type: ignore[no-untyped-def]
    plans, X, y, k = _task(data, task)
    model = build_online(spec_for(plans, "regression" if task == "regression" else "classification", k))
    result = progressive_validation(model, X[:500], y[:500])
    assert result.rows == 500
    blob = online_codec.encode(model)
    restored = online_codec.decode(blob)
    assert online_codec.encode(restored) == blob
    for x, t in zip(rows(X[500:700]), y[500:700].tolist(), strict=True):
        a = model.predict(x) if k == 0 else model.proba(x)
        b = restored.predict(x) if k == 0 else restored.proba(x)
        assert a == b
        model.learn(x, t)
        restored.learn(x, t)
    assert online_codec.encode(restored) == online_codec.encode(model)


def test_progressive_validation_learns_something(data) -> None:  # type: ignore[no-untyped-def]
    plans, X, y, k = _task(data, "binary")
    result = progressive_validation(build_online(spec_for(plans, "classification", k)), X, y)
    assert 0.7 < result.metrics["roc_auc"] <= 1.0 and result.rows_per_s > 0
    plans, X, y, _ = _task(data, "regression")
    result = progressive_validation(build_online(spec_for(plans, "regression", 0)), X, y)
    assert result.metrics["r2"] > 0.5  # the target is a linear function of one feature


def test_decode_refuses_what_it_does_not_know() -> None:
    with pytest.raises(TrainingError, match="not an online-model snapshot"):
        online_codec.decode(b"\x80\x04pickle")
    blob = b'{"format":"other","version":1,"spec":{"task":"regression","numeric":[],"categorical":[]},"linear":[]}'
    with pytest.raises(TrainingError, match="retrain"):
        online_codec.decode(blob)
