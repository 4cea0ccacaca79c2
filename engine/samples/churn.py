"""A seeded, realistic customer-churn table (telecom style) for the demo, tests and benchmarks.

Columns mirror what a real churn export holds, traps included: an ID column (to be dropped), a sign-up
date, yes/no flags, a 0/1 flag, categoricals, a few missing values, `total_charges` blank for brand-new
customers, and a `churn` target ("Yes"/"No", about a quarter positive) driven by tenure, contract,
charges, support calls and payment method through a known logistic model.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

CONTRACTS = ("Month-to-month", "One year", "Two year")
INTERNET = ("DSL", "Fiber optic", "No")
PAYMENT = ("Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)")
_END = dt.date(2024, 6, 30)


def churn_table(rows: int = 5000, seed: int = 0, *, extra_numeric: int = 0) -> pl.DataFrame:
    """`rows` customers; `extra_numeric` adds that many weakly informative numeric usage columns."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(len(CONTRACTS), rows, p=[0.55, 0.24, 0.21])
    tenure = np.clip(rng.gamma(1.2 + contract, 12.0, rows), 0, 72).astype(np.int64)
    internet = rng.choice(len(INTERNET), rows, p=[0.34, 0.44, 0.22])
    payment = rng.choice(len(PAYMENT), rows, p=[0.34, 0.23, 0.22, 0.21])
    senior = (rng.random(rows) < 0.16).astype(np.int64)
    partner = rng.random(rows) < 0.48
    dependents = rng.random(rows) < np.where(partner, 0.5, 0.1)
    paperless = rng.random(rows) < 0.59
    base = np.array([45.0, 80.0, 20.0])[internet]
    monthly = np.round(base + rng.normal(0, 8, rows) + 5 * dependents, 2)
    total = np.round(monthly * tenure * rng.normal(1.0, 0.03, rows), 2)
    calls = rng.poisson(1.0 + 1.5 * (internet == 1), rows)
    logit = (
        -1.5
        - 0.045 * tenure
        + np.array([1.1, -0.5, -1.6])[contract]
        + 0.018 * (monthly - 60)
        + 0.35 * calls
        + np.array([0.55, 0.0, -0.2, -0.25])[payment]
        + 0.3 * senior
        + 0.25 * paperless
        - 0.2 * partner
    )
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    signup = [
        (_END - dt.timedelta(days=int(t * 30.4 + d))).isoformat()
        for t, d in zip(tenure, rng.integers(0, 30, rows), strict=True)
    ]
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{100000 + i:06d}" for i in rng.permutation(rows)],
            "signup_date": signup,
            "gender": rng.choice(["Female", "Male"], rows),
            "senior_citizen": senior,
            "partner": np.where(partner, "Yes", "No"),
            "dependents": np.where(dependents, "Yes", "No"),
            "tenure_months": tenure,
            "contract": np.asarray(CONTRACTS)[contract],
            "internet_service": np.asarray(INTERNET)[internet],
            "payment_method": np.asarray(PAYMENT)[payment],
            "paperless_billing": np.where(paperless, "Yes", "No"),
            "monthly_charges": monthly,
            "total_charges": np.where(tenure == 0, np.nan, total),
            "support_calls": calls,
        }
    )
    for i in range(extra_numeric):
        weight = 0.3 / (i + 1)
        frame = frame.with_columns(pl.Series(f"usage_{i + 1}", np.round(rng.normal(0, 1, rows) + weight * logit, 4)))
    # a few missing values, as real exports have them
    holes = {"monthly_charges": 0.01, "payment_method": 0.02, "support_calls": 0.015}
    frame = frame.with_columns(
        [
            pl.when(pl.Series(rng.random(rows) < share)).then(None).otherwise(pl.col(c)).alias(c)
            for c, share in holes.items()
        ]
    )
    frame = frame.with_columns(pl.col("total_charges").fill_nan(None))
    return frame.with_columns(pl.Series("churn", np.where(churn, "Yes", "No")))


def write_churn_csv(path: Path, rows: int = 5000, seed: int = 0, *, extra_numeric: int = 0) -> Path:
    """Write `churn_table(...)` as CSV (blank cells for missing values) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    churn_table(rows, seed, extra_numeric=extra_numeric).write_csv(path)
    return path
