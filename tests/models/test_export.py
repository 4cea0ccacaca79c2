"""ONNX export of the whole pipeline: parity with real ONNX Runtime sessions, the input contract, and errors
that name the pipeline step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.training.columns import features, infer_columns, prepare_features
from models.training.config import PcaOption
from models.training.errors import ExportError
from models.training.export import check_parity, convert, feeds, io_specs, probe_family, session
from models.training.families import FAMILIES
from models.training.features import build_pipeline
from models.training.load import load_table
from models.training.target import encode_target


@pytest.fixture(scope="module")
def churn(churn_csv: Path) -> tuple[list, pl.DataFrame, np.ndarray]:
    table = load_table(str(churn_csv))
    y, _, _ = encode_target(table.frame, "churn")
    plans = infer_columns(table.frame, "churn")
    return plans, prepare_features(table.frame, plans), y


def _fit(churn: tuple, key: str, task: str = "classification", pca: str = "off", **params: object):  # type: ignore[no-untyped-def]
    plans, X, y = churn
    if task == "regression":
        y = X["monthly_charges"].fill_nan(None).fill_null(60.0).to_numpy().astype(float)
        plans = [p for p in plans if p.name != "monthly_charges"]
        X = X.drop("monthly_charges")
    if key in ("rf", "gb"):
        params.setdefault("n_estimators", 20)
    pipe = build_pipeline(plans, FAMILIES[key], task, pca=PcaOption.parse(pca), seed=0, params=params)
    return plans, X, y, pipe.fit(X[:700], y[:700])


@pytest.mark.parametrize("key", ["lr", "rf", "gb"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_family_exports_as_one_graph_with_parity(churn: tuple, key: str, task: str) -> None:
    plans, X, _, pipe = _fit(churn, key, task)
    onnx = convert(pipe, plans)
    parity = check_parity(onnx, pipe, X[700:], plans)
    assert parity.rows == len(X) - 700 and parity.max_abs_diff <= 1e-4 and parity.passed
    assert parity.label_mismatches == 0
    inputs, outputs = io_specs(onnx, plans)
    assert [i.column for i in inputs] == [p.name for p in features(plans)]
    assert {i.dtype for i in inputs} == {"float32", "string"}
    names = [o.name for o in outputs]
    assert names == (["label", "probabilities"] if task == "classification" else ["variable"])


def test_pca_pipeline_exports_with_parity(churn: tuple) -> None:
    plans, X, _, pipe = _fit(churn, "lr", pca="auto")
    assert pipe.named_steps["pca"].n_components_ < pipe.named_steps["pca"].n_features_in_
    assert check_parity(convert(pipe, plans), pipe, X[700:], plans).max_abs_diff <= 1e-4


def test_unknown_categories_and_missing_values_score_the_same(churn: tuple) -> None:
    plans, X, _, pipe = _fit(churn, "gb")
    odd = X[:4].with_columns(
        pl.Series("contract", ["Three year", "", "Month-to-month", "One year"]),  # unseen level, missing
        pl.Series("tenure_months", [float("nan"), 0.0, 72.0, 1e6], dtype=pl.Float32),  # missing, out of range
    )
    sess = session(convert(pipe, plans))
    proba = sess.run(None, feeds(sess, odd, plans))[1]
    assert np.abs(proba - pipe.predict_proba(odd)).max() <= 1e-4


def test_hgb_is_gated_and_a_failed_conversion_names_the_step(churn: tuple) -> None:
    reason = probe_family(FAMILIES["hgb"], "classification")
    assert reason is not None and "HistGradientBoostingClassifier" in reason
    assert probe_family(FAMILIES["gb"], "classification") is None
    plans, _, _, pipe = _fit(churn, "hgb", max_iter=5)
    with pytest.raises(ExportError, match=r"pipeline step 'model' \(HistGradientBoostingClassifier\): did not convert"):
        convert(pipe, plans)


def test_a_parity_failure_names_the_diverging_step(churn: tuple) -> None:
    plans, X, _, pipe = _fit(churn, "lr")
    onnx = convert(pipe, plans)
    pipe.named_steps["model"].coef_ = pipe.named_steps["model"].coef_ * 1.5  # sklearn side drifts after export
    with pytest.raises(ExportError, match=r"step 'model' \(LogisticRegression\): ONNX and scikit-learn disagree"):
        check_parity(onnx, pipe, X[700:], plans)


def test_float32_precision_loss_in_preprocessing_is_named() -> None:
    # A real trap: an epoch-milliseconds column standardized in float32 (ONNX) vs float64 (scikit-learn).
    rng = np.random.default_rng(0)
    n = 400
    frame = pl.DataFrame(
        {"epoch_ms": 1.7e12 + rng.normal(0, 1e6, n), "x": rng.normal(size=n), "y": (rng.random(n) < 0.5).astype(int)}
    )
    plans = infer_columns(frame, "y")
    X = prepare_features(frame, plans)
    pipe = build_pipeline(plans, FAMILIES["lr"], "classification", pca=PcaOption(), seed=0).fit(
        X, frame["y"].to_numpy()
    )
    with pytest.raises(ExportError, match=r"step 'pre' \(ColumnTransformer\): ONNX and scikit-learn disagree.*epoch"):
        check_parity(convert(pipe, plans), pipe, X, plans)


def test_columns_named_like_onnx_outputs_still_map_to_their_inputs() -> None:
    rng = np.random.default_rng(3)
    n = 200
    frame = pl.DataFrame(
        {
            "label": rng.normal(size=n),
            "variable": rng.choice(["a", "b", "c"], n),
            "Monthly Charges ($)": rng.normal(size=n),
            "y": (rng.random(n) < 0.4).astype(int),
        }
    )
    plans = infer_columns(frame, "y")
    X = prepare_features(frame, plans)
    pipe = build_pipeline(plans, FAMILIES["gb"], "classification", pca=PcaOption(), seed=0, params={"n_estimators": 10})
    onnx = convert(pipe.fit(X, frame["y"].to_numpy()), plans)
    inputs, _ = io_specs(onnx, plans)
    assert [i.column for i in inputs] == ["label", "variable", "Monthly Charges ($)"]
    assert len({i.name for i in inputs}) == 3  # sanitized and renamed by skl2onnx, mapped back by `column`
    assert check_parity(onnx, pipe, X, plans).max_abs_diff <= 1e-4
