"""The generated churn table: seeded, realistic columns and traps, a learnable signal."""

from __future__ import annotations

from engine.samples.churn import churn_table


def test_seeded_and_shaped_like_a_real_export() -> None:
    a, b, c = churn_table(2000, seed=1), churn_table(2000, seed=1), churn_table(2000, seed=2)
    assert a.equals(b) and not a.equals(c)
    assert {"customer_id", "tenure_months", "contract", "monthly_charges", "total_charges", "churn"} <= set(a.columns)
    assert a["customer_id"].n_unique() == 2000
    assert set(a["churn"].unique()) == {"Yes", "No"} and 0.15 < (a["churn"] == "Yes").mean() < 0.4
    assert a["total_charges"].null_count() > 0 and a["payment_method"].null_count() > 0
    # month-to-month customers churn more than two-year ones (the signal the model must find)
    rate = {k: (g["churn"] == "Yes").mean() for (k,), g in a.group_by("contract")}
    assert rate["Month-to-month"] > 2 * rate["Two year"]
    assert churn_table(100, extra_numeric=3).width == a.width + 3
