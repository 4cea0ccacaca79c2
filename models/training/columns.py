"""Column types: infer what each column is, drop what cannot be a feature (and say why), prepare the frame.

A column becomes
- `numeric` when its type is numeric, or when ≥ 95 % of its non-missing text parses as a number (the rest
  is treated as missing and counted);
- `categorical` otherwise, one-hot encoded over its `levels` (the most frequent, at most `max_levels`);
- `dropped`, with a reason: empty, mostly missing, constant, ID-like (unique values, or an id-like name
  with mostly unique values, or a 1…n row number), a date/time, free text (too many distinct values),
  or an unsupported type.

`prepare_features` is the one feature definition shared by training, the parity check and serving:
numeric → float32 with NaN for missing; categorical → string with "" for missing (the ONNX input contract).
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec
import polars as pl

MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?", "-", "--")
NUMERIC_SHARE = 0.95
MAX_MISSING_SHARE = 0.95
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key)$|^(id|uuid|guid|index|row|rownum|row_number)$|[a-z]Id$|ID$")


class ColumnPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What one column is and what training does with it."""

    name: str
    source_dtype: str
    kind: Literal["numeric", "categorical", "dropped"]
    reason: str = ""  # why dropped, or a note (e.g. values treated as missing)
    missing: int = 0
    distinct: int = 0
    levels: tuple[str, ...] = ()  # categorical: one-hot levels; any other value encodes as all zeros


def infer_columns(
    frame: pl.DataFrame, target: str, *, decimal_comma: bool = False, max_levels: int = 30
) -> list[ColumnPlan]:
    """One plan per column except `target`, in frame order."""
    return [_plan(frame[c], decimal_comma, max_levels) for c in frame.columns if c != target]


def features(plans: list[ColumnPlan]) -> list[ColumnPlan]:
    return [p for p in plans if p.kind != "dropped"]


def prepare_features(frame: pl.DataFrame, plans: list[ColumnPlan], *, decimal_comma: bool = False) -> pl.DataFrame:
    """The model's input frame: kept columns only, float32 (NaN = missing) and string ("" = missing)."""
    cols = []
    for p in features(plans):
        s = frame[p.name]
        if p.kind == "numeric":
            cols.append(as_number(s, decimal_comma).cast(pl.Float32).fill_null(float("nan")).alias(p.name))
        else:
            cols.append(as_text(s).fill_null("").alias(p.name))
    return pl.DataFrame(cols)


def _plan(s: pl.Series, decimal_comma: bool, max_levels: int) -> ColumnPlan:
    n, dtype = s.len(), str(s.dtype)
    base = {"name": s.name, "source_dtype": dtype}
    if s.dtype.is_temporal():
        return ColumnPlan(**base, kind="dropped", reason="date/time: derive numeric features (e.g. an age) first")
    if not (s.dtype.is_numeric() or s.dtype in (pl.String, pl.Boolean, pl.Categorical, pl.Enum)):
        return ColumnPlan(**base, kind="dropped", reason=f"unsupported type {dtype}")
    note = ""
    if s.dtype.is_numeric():
        values, kind = s.cast(pl.Float64), "numeric"
    else:
        text = missing_as_null(as_text(s))
        present = n - text.null_count()
        values = as_number(text, decimal_comma)
        parsed = n - values.null_count()
        if s.dtype == pl.String and present and parsed >= NUMERIC_SHARE * present:
            kind = "numeric"
            if parsed < present:
                note = f"{present - parsed} non-numeric values treated as missing"
        else:
            kind, values = "categorical", text
            if s.dtype == pl.String and present and _looks_temporal(text):
                return ColumnPlan(
                    **base, kind="dropped", reason="date/time text: derive numeric features (e.g. an age) first"
                )
    missing = values.null_count() + (values.is_nan().sum() if values.dtype == pl.Float64 else 0)
    present = n - missing
    distinct = (
        values.drop_nulls().drop_nans().n_unique() if values.dtype == pl.Float64 else values.drop_nulls().n_unique()
    )
    base |= {"missing": int(missing), "distinct": int(distinct)}
    reason = _drop_reason(s.name, values, kind, n, present, distinct)
    if reason:
        return ColumnPlan(**base, kind="dropped", reason=reason)
    if kind == "numeric":
        return ColumnPlan(**base, kind="numeric", reason=note)
    raw = as_text(s).fill_null("")  # levels are the values exactly as they arrive (serving sends the same)
    counts = raw.value_counts(sort=True, name="n").sort(["n", s.name], descending=[True, False])
    levels = tuple(counts[s.name].head(max_levels).to_list())
    if len(levels) < counts.height:
        note = f"{counts.height - len(levels)} rarest of {counts.height} levels encode as unknown"
    return ColumnPlan(**base, kind="categorical", reason=note, levels=levels)


def _drop_reason(name: str, values: pl.Series, kind: str, n: int, present: int, distinct: int) -> str:
    if present == 0:
        return "empty: every value is missing"
    if present < (1 - MAX_MISSING_SHARE) * n:
        return f"mostly missing ({n - present} of {n})"
    if distinct == 1:
        return "constant: one value in every row"
    unique_share = distinct / present
    integral = kind == "categorical" or bool((values.drop_nulls().drop_nans() % 1 == 0).all())
    if integral and _ID_NAME.search(name) and unique_share > 0.5:
        return f"ID-like: the name and {distinct} distinct values in {present} rows"
    if kind == "categorical" and distinct == present and present >= 20:
        return "ID-like: every value is unique"
    if kind == "numeric" and integral and distinct == present >= 20:
        v = values.drop_nulls().to_numpy()
        if v.max() - v.min() + 1 == present:
            return "ID-like: a row number (consecutive unique integers)"
    if kind == "categorical" and distinct > 50 and unique_share > 0.5:
        return f"free text or identifier: {distinct} distinct values in {present} rows"
    return ""


def as_text(s: pl.Series) -> pl.Series:
    if s.dtype == pl.Boolean:
        return s.cast(pl.String).str.to_lowercase()
    return s.cast(pl.String)


def missing_as_null(text: pl.Series) -> pl.Series:
    stripped = text.str.strip_chars()
    missing = stripped.str.to_lowercase().is_in(MISSING_TOKENS)
    return stripped.zip_with(~missing, pl.Series(text.name, [None] * len(text), pl.String))


def as_number(s: pl.Series, decimal_comma: bool) -> pl.Series:
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    text = missing_as_null(as_text(s))
    if decimal_comma:
        text = text.str.replace(",", ".", literal=True)
    return text.cast(pl.Float64, strict=False)


def _looks_temporal(text: pl.Series) -> bool:
    sample = text.drop_nulls().head(200)
    if not sample.str.contains(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}").all():
        return False
    for fn in (sample.str.to_datetime, sample.str.to_date):
        try:
            parsed = fn(strict=False)
        except pl.exceptions.PolarsError:
            continue
        if parsed.null_count() <= (1 - NUMERIC_SHARE) * sample.len():
            return True
    return False
