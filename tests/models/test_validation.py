"""Split and folds: stratification holds within ±1 pp, rare classes fail clearly, regression uses KFold."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.errors import DataError
from models.training.validation import fold_balance, holdout_split, make_folds


def test_stratified_folds_within_one_point_on_an_imbalanced_target() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.07).astype(np.int64)
    tr, te = holdout_split(y, "classification", 0.2, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    assert abs(y[te].mean() - y.mean()) < 0.005
    folds = make_folds(y[tr], "classification", 5, seed=0)
    balance = fold_balance(y[tr], folds, 2)
    assert len(balance) == 5 and all(b.within_1pp and b.deviation_pp <= 1.0 for b in balance)
    assert all(abs(b.positive_rate - y[tr].mean()) * 100 <= 1.0 for b in balance)
    # each row is validated exactly once
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(len(tr)))


def test_same_seed_same_folds_other_seed_other_folds() -> None:
    y = np.arange(200) % 3
    a, b, c = (make_folds(y, "classification", 4, s) for s in (5, 5, 6))
    assert all((x[1] == z[1]).all() for x, z in zip(a, b, strict=True))
    assert any(not np.array_equal(x[1], z[1]) for x, z in zip(a, c, strict=True))


def test_a_class_too_rare_for_the_folds_is_a_clear_error() -> None:
    y = np.array([0] * 50 + [1] * 3)
    with pytest.raises(
        DataError, match=r"class 'yes' has only 3 rows, too few for 5 stratified folds.*lower --folds to 3"
    ):
        make_folds(y, "classification", 5, 0, labels=("no", "yes"))
    with pytest.raises(DataError, match="too few for a stratified test split"):
        holdout_split(np.array([0] * 20 + [1]), "classification", 0.2, 0, labels=("no", "yes"))


def test_regression_uses_plain_kfold() -> None:
    y = np.linspace(0, 1, 50)
    folds = make_folds(y, "regression", 5, 0)
    assert [len(va) for _, va in folds] == [10] * 5
    with pytest.raises(DataError, match="cannot make 5 folds"):
        make_folds(np.arange(6.0), "regression", 5, 0)
