"""Target handling: task choice, label coding, positive class, rows without a target, bad targets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.training.errors import DataError, TrainUsageError
from models.training.target import encode_target


def _frame(values: list[object]) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(len(values))), "t": values}, strict=False)


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        (["Yes", "No", "No", "Yes", "No"], "Yes"),
        (["0", "1", "1", "0", "0"], "1"),
        ([0.0, 1.0, 1.0, 0.0, 0.0], "1"),
        ([True, False, False, True, False], "true"),
        (["benign", "malignant", "benign", "benign", "benign"], "malignant"),  # no reading: the rarer one
    ],
)
def test_binary_labels_and_positive_class(values: list[object], positive: str) -> None:
    y, keep, info = encode_target(_frame(values), "t")
    assert info.task == "classification" and info.positive_label == positive
    assert info.labels[1] == positive and keep.all()
    assert y.tolist() == [int(str(v).lower() in (positive.lower(), "1.0") or v is True) for v in values]


def test_positive_option_and_bad_positive() -> None:
    _, _, info = encode_target(_frame(["a", "b", "b"]), "t", positive="b")
    assert info.labels == ("a", "b")
    with pytest.raises(TrainUsageError, match="not a label"):
        encode_target(_frame(["a", "b", "b"]), "t", positive="c")


def test_task_choice_and_missing_targets() -> None:
    y, keep, info = encode_target(_frame([1.5, 2.25, None, 7.0, 3.5, 9.75]), "t")
    assert info.task == "regression" and info.dropped_rows == 1 and keep.tolist() == [1, 1, 0, 1, 1, 1]
    assert np.allclose(y, [1.5, 2.25, 7.0, 3.5, 9.75])
    _, _, info = encode_target(_frame([0, 1, 2, 2, 1, 0]), "t")
    assert info.task == "classification" and info.labels == ("0", "1", "2") and info.positive_label is None
    _, _, info = encode_target(_frame([0, 1, 2, 2, 1, 0]), "t", "regression")
    assert info.task == "regression"


def test_bad_targets_say_what_to_do() -> None:
    with pytest.raises(TrainUsageError, match="did you mean 't'"):
        encode_target(_frame([1, 2]), "T")
    with pytest.raises(DataError, match="constant"):
        encode_target(_frame(["yes"] * 5), "t")
    with pytest.raises(DataError, match="empty"):
        encode_target(_frame(["", "", "NA"]), "t")
    with pytest.raises(TrainUsageError, match="numeric target"):
        encode_target(_frame(["a", "b", "a"]), "t", "regression")
