"""The target column: choose the task, encode labels, drop rows without a target.

Classification labels are the target's text (trimmed); yes/no, true/false and 0/1 all work. Binary targets
get a positive class: `--positive`, else the label that reads as positive (1, yes, true, y, t, positive),
else the rarer one. Labels are coded 0…k-1 (binary: 0 = negative, 1 = positive); the codes are the
model's outputs and `labels` maps them back.
"""

from __future__ import annotations

import difflib
from typing import Literal

import msgspec
import numpy as np
import polars as pl

from models.training.columns import as_number, as_text, missing_as_null
from models.training.errors import DataError, TrainUsageError

Task = Literal["classification", "regression"]
_POSITIVE = ("1", "1.0", "yes", "y", "true", "t", "positive", "pos")
MAX_AUTO_CLASSES = 10


class TargetInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    task: Task
    labels: tuple[str, ...] = ()  # classification: label of code i
    positive_label: str | None = None  # binary only
    class_counts: tuple[int, ...] = ()
    dropped_rows: int = 0  # rows without a target value
    mean: float | None = None  # regression
    std: float | None = None


def encode_target(
    frame: pl.DataFrame, name: str, task: str = "auto", positive: str | None = None, *, decimal_comma: bool = False
) -> tuple[np.ndarray, np.ndarray, TargetInfo]:
    """(y, keep, info): `y` for the rows where `keep` is true (the others have no target value)."""
    if name not in frame.columns:
        same = [c for c in frame.columns if c.strip().lower() == name.strip().lower()]
        near = same or difflib.get_close_matches(name, frame.columns, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"columns: {', '.join(frame.columns[:12])}"
        msg = f"--target {name!r} is not a column of the data; {hint}"
        raise TrainUsageError(msg)
    s = frame[name]
    text = missing_as_null(as_text(s)) if not s.dtype.is_numeric() else s.cast(pl.String)
    numbers = as_number(s, decimal_comma)
    keep = text.is_not_null().to_numpy()
    if s.dtype.is_float():
        keep &= ~np.isnan(numbers.to_numpy())
    if not keep.any():
        msg = f"target {name!r} is empty: every value is missing"
        raise DataError(msg)
    text, numbers = text.filter(keep), numbers.filter(keep)
    dropped = int((~keep).sum())
    numeric = numbers.null_count() == 0
    distinct = text.n_unique() if not numeric else numbers.n_unique()
    if distinct < 2:
        msg = f"target {name!r} is constant ({text[0]!r} in all {text.len()} rows): nothing to learn; check --target"
        raise DataError(msg)
    if task == "auto":
        integral = numeric and bool((numbers % 1 == 0).all())
        task = (
            "classification"
            if not numeric or distinct == 2 or (integral and distinct <= MAX_AUTO_CLASSES)
            else "regression"
        )
    if task == "regression":
        if not numeric:
            bad = text.filter(numbers.is_null())[0]
            msg = f"--task regression needs a numeric target; {name!r} holds {bad!r}: use --task classification"
            raise TrainUsageError(msg)
        y = numbers.to_numpy().astype(np.float64)
        info = TargetInfo(name=name, task="regression", dropped_rows=dropped, mean=float(y.mean()), std=float(y.std()))
        return y, keep, info
    return _classes(text if not numeric else _numeric_labels(numbers), name, positive, keep, dropped)


def _numeric_labels(numbers: pl.Series) -> pl.Series:
    """1.0 → '1' so that 0/1 written as floats read as the labels 0 and 1."""
    if bool((numbers % 1 == 0).all()):
        return numbers.cast(pl.Int64).cast(pl.String)
    return numbers.cast(pl.String)


def _classes(
    text: pl.Series, name: str, positive: str | None, keep: np.ndarray, dropped: int
) -> tuple[np.ndarray, np.ndarray, TargetInfo]:
    counts = text.value_counts(sort=True, name="n")
    labels = sorted(counts[text.name].to_list(), key=_label_order)
    pos = None
    if len(labels) == 2:
        if positive is not None:
            if positive not in labels:
                msg = f"--positive {positive!r} is not a label of {name!r} (labels: {', '.join(labels)})"
                raise TrainUsageError(msg)
            pos = positive
        else:
            reads = [lab for lab in labels if lab.strip().lower() in _POSITIVE]
            by_count = dict(zip(counts[text.name].to_list(), counts["n"].to_list(), strict=True))
            pos = reads[0] if len(reads) == 1 else min(labels, key=lambda lab: (by_count[lab], lab))
        labels = [lab for lab in labels if lab != pos] + [pos]
    elif positive is not None:
        msg = f"--positive applies to two-class targets; {name!r} has {len(labels)} classes"
        raise TrainUsageError(msg)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.asarray([index[v] for v in text.to_list()], dtype=np.int64)
    info = TargetInfo(
        name=name,
        task="classification",
        labels=tuple(labels),
        positive_label=pos,
        class_counts=tuple(int(c) for c in np.bincount(y, minlength=len(labels))),
        dropped_rows=dropped,
    )
    return y, keep, info


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
