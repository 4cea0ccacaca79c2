"""Column type inference, dropping (with reasons) and the prepared frame (the ONNX input contract)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from models.training.columns import features, infer_columns, prepare_features


def _messy(n: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    numbers = [f"{v:.2f}" for v in rng.normal(50, 10, n)]
    numbers[3], numbers[7] = "n/a", ""  # missing tokens, not junk
    numbers[11] = "oops"  # one unparsable value (< 5 %): treated as missing
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "seq": [str(i + 1) for i in range(n)],
            "charges": numbers,
            "plan": rng.choice(["basic", "plus", "pro"], n).tolist(),
            "constant": ["x"] * n,
            "empty": [""] * n,
            "signup": [f"2023-0{1 + i % 9}-1{i % 10}" for i in range(n)],
            "comment": [f"free text number {i} about things" for i in range(n)],
            "flag": [bool(i % 2) for i in range(n)],
            "label": ["yes", "no"] * (n // 2),
        }
    )


def test_types_and_drop_reasons() -> None:
    plans = {p.name: p for p in infer_columns(_messy(), "label")}
    assert "label" not in plans
    assert plans["charges"].kind == "numeric"
    assert plans["charges"].missing == 3 and "1 non-numeric" in plans["charges"].reason
    assert plans["plan"].kind == "categorical" and set(plans["plan"].levels) == {"basic", "plus", "pro"}
    assert plans["flag"].kind == "categorical" and set(plans["flag"].levels) == {"true", "false"}
    assert plans["customer_id"].kind == "dropped" and "ID-like" in plans["customer_id"].reason
    assert plans["seq"].kind == "dropped" and "row number" in plans["seq"].reason
    assert plans["constant"].kind == "dropped" and "constant" in plans["constant"].reason
    assert plans["empty"].kind == "dropped" and "empty" in plans["empty"].reason
    assert plans["signup"].kind == "dropped" and "date" in plans["signup"].reason
    assert plans["comment"].kind == "dropped" and "ID-like" in plans["comment"].reason


def test_numeric_columns_that_are_not_ids_are_kept() -> None:
    n = 50
    frame = pl.DataFrame(
        {"price": np.arange(n) * 1.5 + 0.25, "count": list(range(100, 100 + 2 * n, 2)), "y": [0, 1] * 25}
    )
    plans = {p.name: p for p in infer_columns(frame, "y")}
    assert plans["price"].kind == "numeric"  # unique floats are measurements, not IDs
    assert plans["count"].kind == "numeric"  # unique integers, but not a 1…n sequence and not an id name


def test_levels_are_capped_by_frequency() -> None:
    values = [f"v{i % 40}" for i in range(400)] + ["v0"] * 50
    plans = infer_columns(pl.DataFrame({"c": values, "y": [0, 1] * 225}), "y", max_levels=5)
    assert plans[0].levels[0] == "v0" and len(plans[0].levels) == 5
    assert "35 rarest of 40 levels" in plans[0].reason


def test_prepared_frame_is_the_onnx_contract() -> None:
    frame = _messy()
    plans = infer_columns(frame, "label")
    X = prepare_features(frame, plans)
    assert X.columns == [p.name for p in features(plans)] == ["charges", "plan", "flag"]
    assert X["charges"].dtype == pl.Float32 and X["charges"].null_count() == 0
    assert math.isnan(X["charges"][3]) and math.isnan(X["charges"][11])
    assert X["plan"].dtype == pl.String


def test_decimal_comma_and_typed_sources() -> None:
    frame = pl.DataFrame(
        {
            "t": ["21,5", "19,0", "", "20,25"] * 10,
            "n": pl.Series([1, None, 3, 4] * 10, dtype=pl.Int32),
            "y": [0, 1] * 20,
        }
    )
    plans = infer_columns(frame, "y", decimal_comma=True)
    X = prepare_features(frame, plans, decimal_comma=True)
    assert [p.kind for p in plans] == ["numeric", "numeric"]
    assert X["t"][0] == 21.5 and math.isnan(X["t"][2]) and math.isnan(X["n"][1])
