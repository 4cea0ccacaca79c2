"""The vectorised executor: a batch of raw columns -> typed rows that passed, and the rejected rows.

Everything is column-at-a-time Polars work (no per-row Python) except the wording of reject messages,
which runs only over the rejected rows and reuses `describe`, so messages match the per-record path.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import polars as pl

from engine.schema.spec import FieldSpec, Schema
from engine.validation import rules
from engine.validation.describe import describe, no_measurement

_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_NUMERIC = (
    pl.Float32,
    pl.Float64,
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Decimal,
)
_INTEGER = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


@dataclass(frozen=True)
class FrameResult:
    """`ok`: typed rows in schema order. `rejected`: row indices into the input, with reason and message."""

    ok: pl.DataFrame
    rejected: pl.DataFrame  # columns: index (u32), reason (str), message (str)


def validate_frame(
    schema: Schema, frame: pl.DataFrame, *, decimal_comma: bool = False, height: int | None = None
) -> FrameResult:
    """Validate a batch whose columns are already renamed to schema field names (missing ones allowed).

    `height` gives the row count when `frame` has no columns at all (no column maps to the schema)."""
    n = frame.height if frame.width else (height if height is not None else frame.height)
    values: dict[str, pl.Series] = {}
    codes: dict[str, pl.Series] = {}
    for spec in schema.fields:
        col = frame.get_column(spec.name) if spec.name in frame.columns else _nulls(n, pl.String)
        value, code = check_series(spec, col, decimal_comma=decimal_comma)
        values[spec.name] = value.alias(spec.name)
        codes[spec.name] = code.alias(spec.name)
    code_frame = pl.DataFrame(list(codes.values()))
    reason = code_frame.select(pl.coalesce(pl.all()).alias("reason")).to_series()
    if schema.at_least_one:
        none_present = (
            pl.DataFrame([values[c] for c in schema.at_least_one])
            .select(pl.all_horizontal(pl.all().is_null()))
            .to_series()
        )
        reason = pl.select(
            pl.when(reason.is_null() & none_present).then(pl.lit(rules.NO_MEASUREMENT)).otherwise(reason)
        ).to_series()
    good = reason.is_null()
    ok = pl.DataFrame(list(values.values())).filter(good)
    bad_idx = (~good).arg_true()
    rejected = pl.DataFrame({"index": bad_idx, "reason": reason.gather(bad_idx)})
    messages = _messages(schema, frame, code_frame, bad_idx) if len(bad_idx) else []
    rejected = rejected.with_columns(pl.Series("message", messages, pl.String))
    return FrameResult(ok=ok, rejected=rejected)


def _messages(schema: Schema, frame: pl.DataFrame, code_frame: pl.DataFrame, idx: pl.Series) -> list[str]:
    codes = code_frame[idx].to_dicts()
    raws = {c: _as_text(frame.get_column(c).gather(idx)).to_list() for c in schema.names if c in frame.columns}
    out = []
    for i, row in enumerate(codes):
        parts = [
            describe(spec, row[spec.name], raws[spec.name][i] if spec.name in raws else None)
            for spec in schema.fields
            if row[spec.name] is not None
        ]
        out.append("; ".join(parts) if parts else no_measurement(schema))
    return out


def _as_text(col: pl.Series) -> pl.Series:
    return col if col.dtype == pl.String else col.cast(pl.String, strict=False)


def _code(mask: pl.Series, code: str) -> pl.Expr:
    return pl.when(mask).then(pl.lit(code))


def check_series(spec: FieldSpec, col: pl.Series, *, decimal_comma: bool = False) -> tuple[pl.Series, pl.Series]:
    """(typed values, reason code or null) for one column.

    Text columns take a fast path first (a plain cast or one strict shape); only the rows it cannot vouch
    for (missing tokens, padding, other notations, bad values) go through the full rules below, so a clean
    column costs one or two vectorised passes and a messy one stays correct.
    """
    if col.dtype == pl.String:
        values, slow = _fast(spec, col, decimal_comma)
        codes = _nulls(len(col), pl.String)
        if slow.any():
            idx = slow.arg_true()
            slow_values, slow_codes = _full(spec, col.gather(idx), decimal_comma=decimal_comma)
            values = values.scatter(idx, slow_values)
            codes = codes.scatter(idx, slow_codes)
        return values, codes
    return _full(spec, col, decimal_comma=decimal_comma)


def _full(spec: FieldSpec, col: pl.Series, *, decimal_comma: bool = False) -> tuple[pl.Series, pl.Series]:
    if spec.kind == "float" and isinstance(col.dtype, _NUMERIC):
        return _numbers(spec, col.cast(pl.Float64), missing=col.is_null() | col.cast(pl.Float64).is_nan())
    if spec.kind == "timestamp" and (isinstance(col.dtype, pl.Datetime | pl.Date) or col.dtype in _NUMERIC):
        return _typed_timestamps(spec, col)
    if spec.kind in ("float", "timestamp") and col.dtype not in (pl.String, pl.Null):
        # Booleans, lists, structs: never a number or an instant.
        missing = col.is_null()
        code = pl.select(
            pl.when(missing & spec.required)
            .then(pl.lit(rules.MISSING_FIELD))
            .when(~missing)
            .then(pl.lit(rules.BAD_TYPE))
        ).to_series()
        dtype = pl.Float64 if spec.kind == "float" else pl.Datetime("us", "UTC")
        return _nulls(len(col), dtype), code
    text = _as_text(col).str.strip_chars(rules.WHITESPACE)
    missing = text.is_null() | text.str.contains(rules.MISSING_RE)
    text = pl.select(pl.when(missing).then(None).otherwise(text)).to_series()
    if spec.kind == "string":
        return _strings(spec, text, missing)
    if spec.kind == "choice":
        low = text.str.to_lowercase()
        bad = ~missing & ~low.is_in(spec.choices)
        return low, _select(_missing_code(spec, missing).otherwise(_code(bad, rules.INVALID_CHOICE)))
    if spec.kind == "float":
        if decimal_comma:
            text = text.str.replace(",", ".", literal=True)
        shape_ok = text.str.contains(rules.NUMBER_RE).fill_null(False)
        number = text.cast(pl.Float64, strict=False)
        number = pl.select(pl.when(shape_ok).then(number)).to_series()
        return _numbers(spec, number, missing=missing)
    return _text_timestamps(spec, text, missing)


def _nulls(n: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    return pl.repeat(None, n, dtype=dtype, eager=True)


def _select(expr: pl.Expr) -> pl.Series:
    return pl.select(expr).to_series()


def _missing_code(spec: FieldSpec, missing: pl.Series) -> pl.When:
    return pl.when(missing & spec.required).then(pl.lit(rules.MISSING_FIELD)).when(missing).then(None)


def _strings(spec: FieldSpec, text: pl.Series, missing: pl.Series) -> tuple[pl.Series, pl.Series]:
    length = text.str.len_chars()
    bad = (length < (spec.min_length or 0)) | (length > (spec.max_length or 2**31))
    if spec.pattern:
        bad = bad | ~text.str.contains(spec.pattern)
    bad = bad.fill_null(False)
    return text, _select(_missing_code(spec, missing).otherwise(_code(bad, rules.INVALID_VALUE)))


def _numbers(spec: FieldSpec, number: pl.Series, *, missing: pl.Series) -> tuple[pl.Series, pl.Series]:
    bad_type = ~missing & (number.is_null() | number.is_infinite())
    low = number < spec.ge if spec.ge is not None else pl.Series([False] * len(number))
    high = number > spec.le if spec.le is not None else pl.Series([False] * len(number))
    out = (low | high).fill_null(False)
    code = _select(
        _missing_code(spec, missing)
        .when(bad_type)
        .then(pl.lit(rules.BAD_TYPE))
        .when(out)
        .then(pl.lit(rules.OUT_OF_RANGE))
    )
    value = _select(pl.when(code.is_null() & ~missing).then(number))
    return value, code


def _bounds_us(spec: FieldSpec) -> tuple[int, int]:
    lo, hi = rules.seconds_range(spec.since, spec.before)  # type: ignore[arg-type]
    return int(lo) * 1_000_000, int(hi) * 1_000_000


def _finish(spec: FieldSpec, micros: pl.Series, code: pl.Series) -> tuple[pl.Series, pl.Series]:
    lo, hi = _bounds_us(spec)
    out = ((micros < lo) | (micros >= hi)).fill_null(False) & code.is_null()
    code = _select(pl.when(out).then(pl.lit(rules.OUT_OF_RANGE)).otherwise(code))
    good = _select(pl.when(code.is_null()).then(micros))
    return pl.from_epoch(good, time_unit="us").dt.replace_time_zone("UTC"), code


def _epoch(spec: FieldSpec, whole: pl.Series | None, real: pl.Series | None, n: int) -> pl.Series:
    """Epoch micros from integer (s or ms) and float (s) epochs; null where out of range (checked first)."""
    lo, hi = rules.seconds_range(spec.since, spec.before)  # type: ignore[arg-type]
    exprs = []
    if whole is not None:
        millis = whole >= rules.EPOCH_MS_THRESHOLD
        secs = pl.when(millis).then(whole / 1000).otherwise(whole.cast(pl.Float64))
        inside = (secs >= lo) & (secs < hi)
        exprs.append(pl.when(inside & millis).then(whole * 1000).when(inside).then(whole * 1_000_000))
    if real is not None:
        inside = (real >= lo) & (real < hi)
        exprs.append(pl.when(inside).then((real * 1_000_000).cast(pl.Int64, strict=False)))
    if not exprs:
        return _nulls(n, pl.Int64)
    return pl.select(pl.coalesce(exprs).cast(pl.Int64)).to_series()


def _typed_timestamps(spec: FieldSpec, col: pl.Series) -> tuple[pl.Series, pl.Series]:
    missing = col.is_null()
    if isinstance(col.dtype, pl.Date):
        col = col.cast(pl.Datetime("us"))
    if isinstance(col.dtype, pl.Datetime):
        aware = col.dt.convert_time_zone("UTC") if col.dtype.time_zone else col.dt.replace_time_zone("UTC")
        micros = aware.dt.epoch("us")
        code = _select(_missing_code(spec, missing).otherwise(None))
        return _finish(spec, micros, code)
    if isinstance(col.dtype, _INTEGER):
        micros = _epoch(spec, col.cast(pl.Int64, strict=False), None, len(col))
    else:
        as_float = col.cast(pl.Float64)
        missing = missing | as_float.is_nan()
        micros = _epoch(spec, None, as_float, len(col))
    code = _select(_missing_code(spec, missing).when(micros.is_null()).then(pl.lit(rules.OUT_OF_RANGE)))
    return _finish(spec, micros, code)


def _text_timestamps(spec: FieldSpec, text: pl.Series, missing: pl.Series) -> tuple[pl.Series, pl.Series]:
    n = len(text)
    is_int = text.str.contains(rules.INTEGER_RE).fill_null(False)
    is_num = text.str.contains(rules.NUMBER_RE).fill_null(False)
    whole = _select(pl.when(is_int).then(text.cast(pl.Int64, strict=False))) if is_int.any() else None
    real_mask = is_num & ~is_int
    real = _select(pl.when(real_mask).then(text.cast(pl.Float64, strict=False))) if real_mask.any() else None
    micros = _epoch(spec, whole, real, n)
    epoch_out = is_num & micros.is_null()  # numeric, but outside the range (or not finite)
    iso_mask = ~is_num & ~missing
    if iso_mask.any():
        micros = micros.scatter(iso_mask.arg_true(), _parse_iso(text.filter(iso_mask)))
    bad_type = iso_mask & micros.is_null()
    code = _select(
        _missing_code(spec, missing)
        .when(epoch_out)
        .then(pl.lit(rules.OUT_OF_RANGE))
        .when(bad_type)
        .then(pl.lit(rules.BAD_TYPE))
    )
    return _finish(spec, micros, code)


def _parse_iso(text: pl.Series) -> pl.Series:
    """ISO-8601 strings -> epoch micros (UTC), null where unparseable. Tries formats on what is left."""
    norm = text.str.replace(" ", "T", literal=True, n=1).str.replace(r"[Zz]$", "+00:00")
    shaped = norm.str.contains(rules.ISO_RE).fill_null(False)
    out = _nulls(len(norm), pl.Int64)
    todo = shaped
    for fmt in _ISO_FORMATS:
        if not todo.any():
            break
        idx = todo.arg_true()
        parsed = norm.gather(idx).str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        out = out.scatter(idx, parsed.dt.epoch("us"))
        todo = todo & out.is_null()
    return out


# -- fast paths: exact on the rows they accept, and they accept only rows the full rules would accept as-is --
_D = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
_T = r"[0-9]{2}:[0-9]{2}:[0-9]{2}"
_F = r"(?:\.[0-9]{1,6})?"
# (strict shape, format): the common notations, cheapest first. Anything else takes the full rules.
_FAST_TS = (
    (_D + "T" + _T + "Z$", "%Y-%m-%dT%H:%M:%SZ"),
    (_D + "T" + _T + "$", "%Y-%m-%dT%H:%M:%S"),
    (_D + " " + _T + "$", "%Y-%m-%d %H:%M:%S"),
    (_D + "T" + _T + _F + "Z$", "%Y-%m-%dT%H:%M:%S%.fZ"),
    (_D + "[T ]" + _T + _F + "[+-][0-9]{2}:[0-9]{2}$", "%Y-%m-%dT%H:%M:%S%.f%:z"),
)
_SHORTEST_SAFE = max(len(t) for t in rules.MISSING_TOKENS) + 1


def _fast(spec: FieldSpec, col: pl.Series, decimal_comma: bool) -> tuple[pl.Series, pl.Series]:
    """(values, rows that need the full rules)."""
    if spec.kind == "float":
        text = col.str.replace(",", ".", literal=True) if decimal_comma else col
        number = text.cast(pl.Float64, strict=False)
        fine = number.is_finite()
        if spec.ge is not None:
            fine = fine & (number >= spec.ge)
        if spec.le is not None:
            fine = fine & (number <= spec.le)
        fine = fine.fill_null(False)
        return _select(pl.when(fine).then(number)), ~fine
    if spec.kind == "choice":
        fine = col.is_in(spec.choices).fill_null(False)
        return col, ~fine
    if spec.kind == "string":
        length = col.str.len_chars()
        fine = (length >= max(spec.min_length or 0, _SHORTEST_SAFE)) & (length <= (spec.max_length or 2**31))
        if spec.pattern:
            fine = fine & col.str.contains(spec.pattern)
        if _admits_padding(spec.pattern):
            fine = fine & ~col.str.contains(rules.PADDED_RE)
        fine = fine.fill_null(False)
        return col, ~fine
    return _fast_timestamps(spec, col)


@functools.cache
def _admits_padding(pattern: str | None) -> bool:
    """Whether a value matching `pattern` may start or end with whitespace (then it needs trimming)."""
    return pattern is None or any(re.search(pattern, c + "a") or re.search(pattern, "a" + c) for c in rules.WHITESPACE)


def _fast_timestamps(spec: FieldSpec, col: pl.Series) -> tuple[pl.Series, pl.Series]:
    n = len(col)
    micros = _nulls(n, pl.Int64)
    todo = col.is_not_null()
    for shape, fmt in _FAST_TS:
        if not todo.any():
            break
        everything = bool(todo.all())
        idx = None if everything else todo.arg_true()
        sub = col if idx is None else col.gather(idx)
        hit = sub.str.contains(shape)
        if not hit.any():
            continue
        hit_idx = None if hit.all() else hit.arg_true()
        text = sub if hit_idx is None else sub.gather(hit_idx)
        if "%:z" in fmt:
            text = text.str.replace(" ", "T", literal=True, n=1)
        parsed = text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us").dt.epoch("us")
        if idx is None and hit_idx is None:
            micros = parsed
        else:
            where = idx if hit_idx is None else (hit_idx if idx is None else idx.gather(hit_idx))
            micros = micros.scatter(where, parsed)
        todo = todo & micros.is_null()
    if todo.any():
        idx = todo.arg_true()
        sub = col.gather(idx)
        whole = _select(pl.when(sub.str.contains(rules.INTEGER_RE)).then(sub.cast(pl.Int64, strict=False)))
        micros = micros.scatter(idx, _epoch(spec, whole, None, len(sub)))
    lo, hi = _bounds_us(spec)
    fine = ((micros >= lo) & (micros < hi)).fill_null(False)
    good = _select(pl.when(fine).then(micros))
    return pl.from_epoch(good, time_unit="us").dt.replace_time_zone("UTC"), ~fine
