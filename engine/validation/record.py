"""The per-record executor: one decoded message (a dict) -> a typed Struct or a Problem.

For sources that deliver one record at a time (MQTT, HTTP). Files and micro-batches use the vectorised
executor in `engine.validation.frame`; both read the same FieldSpecs and `rules`, and a parity test
keeps their verdicts identical.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from engine.schema.spec import FieldSpec, Schema
from engine.validation import rules
from engine.validation.describe import describe, no_measurement

_NUMBER = re.compile(rules.NUMBER_RE)
_INTEGER = re.compile(rules.INTEGER_RE)
_ISO = re.compile(rules.ISO_RE)
# 'YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z', how devices write an instant: a shortcut past the epoch and ISO regexes.
_ISO_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z").fullmatch


class Problem(msgspec.Struct, frozen=True):
    """Why a record was rejected: the first failing rule's code, and every failing rule in words."""

    reason: str
    message: str


def validate_record(schema: Schema, record: Any, *, decimal_comma: bool = False) -> msgspec.Struct | Problem:
    """Cleanse and validate one decoded record; return the typed record or the Problem."""
    if type(record) is not dict and not isinstance(record, Mapping):
        return Problem(rules.NOT_AN_OBJECT, f"expected a JSON object, got {type(record).__name__}")
    by_name: Mapping[str, object]
    if type(record) is dict and _CLEAN_KEYS.issuperset(record) and None not in record.values():
        by_name = record  # every key already a clean name (so no two clean alike), every value given
    else:
        by_name = _by_name(record)
    # A field's own name is its first candidate; its aliases are looked at only when one was given at all.
    aliased = not schema.alias_names.isdisjoint(by_name)
    values: dict[str, Any] = {}  # only values given (never None)
    problems: list[tuple[str, str]] = []
    get = by_name.get
    for spec, candidates in schema.field_candidates:
        found = get(spec.name)
        if found is None and aliased:
            for c in candidates:
                if c in by_name:
                    found = by_name[c]
                    break
        if found is None:
            if spec.required:
                problems.append((rules.MISSING_FIELD, describe(spec, rules.MISSING_FIELD, None)))
            continue
        if type(found) is float and spec.kind == "float":  # a JSON number: its text would be repr(found)
            if (  # `_check_float`, inline, for the usual value: finite and in range
                found == found
                and found not in _INFINITIES
                and (spec.ge is None or found >= spec.ge)
                and (spec.le is None or found <= spec.le)
            ):
                values[spec.name] = found
                continue
            value, code = _check_float(spec, found)
            raw = None if code is None else rules.to_text(found)
        elif type(found) is int and spec.kind == "float":  # its text is str(found): a number, maybe infinite
            raw = str(found)
            value, code = _check_float(spec, float(raw))
        else:
            raw = rules.to_text(found)
            value, code = check_text(spec, raw, decimal_comma=decimal_comma)
        if code is not None:
            problems.append((code, describe(spec, code, raw)))
        elif value is not None:
            values[spec.name] = value
    if schema.at_least_one and not problems and values.keys().isdisjoint(schema.at_least_one):
        problems.append((rules.NO_MEASUREMENT, no_measurement(schema)))
    if problems:
        return Problem(problems[0][0], "; ".join(m for _, m in problems))
    return schema.record_type(**values)


def _by_name(record: Mapping[Any, Any]) -> dict[str, object]:
    """Clean name -> the first value given under it (None is not a value)."""
    by_name: dict[str, object] = {}
    clean = rules.clean_column_name
    for key, value in record.items():
        if value is not None:
            name = clean(key if type(key) is str else str(key))
            if name not in by_name:
                by_name[name] = value
            if name == key and type(key) is str and len(_CLEAN_KEYS) < _MAX_CLEAN_KEYS:
                _CLEAN_KEYS.add(key)
    return by_name


# Keys seen to be clean names already (most records' keys: the same few): such a record is its own `by_name`.
_CLEAN_KEYS: set[str] = set()
_MAX_CLEAN_KEYS = 4096


def _check_float(spec: FieldSpec, number: float) -> tuple[float | None, str | None]:
    """`check_text(spec, rules.to_text(number))` for a float, without the text: repr() of a finite float
    reads back as the same float, NaN reads as missing and an infinity is not a number."""
    if number != number:
        return None, (rules.MISSING_FIELD if spec.required else None)
    if number in _INFINITIES:
        return None, rules.BAD_TYPE
    if (spec.ge is not None and number < spec.ge) or (spec.le is not None and number > spec.le):
        return None, rules.OUT_OF_RANGE
    return number, None


_INFINITIES = (math.inf, -math.inf)
_WS = frozenset(rules.WHITESPACE)


def check_text(spec: FieldSpec, raw: str | None, *, decimal_comma: bool = False) -> tuple[Any, str | None]:
    """(cleansed value, None) or (None, reason code) for one field's text."""
    if raw is None:
        return None, (rules.MISSING_FIELD if spec.required else None)
    text = raw.strip(rules.WHITESPACE) if raw and (raw[0] in _WS or raw[-1] in _WS) else raw
    if text.lower() in rules.MISSING_TOKENS:
        return None, (rules.MISSING_FIELD if spec.required else None)
    if spec.kind == "string":
        ok = (spec.min_length or 0) <= len(text) <= (spec.max_length or len(text))
        if not ok or (spec.pattern and not _compiled(spec.pattern).search(text)):
            return None, rules.INVALID_VALUE
        return text, None
    if spec.kind == "choice":
        low = text.lower()
        return (low, None) if low in spec.choices else (None, rules.INVALID_CHOICE)
    if spec.kind == "float":
        if decimal_comma:
            text = text.replace(",", ".")
        if not _NUMBER.match(text):
            return None, rules.BAD_TYPE
        number = float(text)
        if not math.isfinite(number):
            return None, rules.BAD_TYPE
        if (spec.ge is not None and number < spec.ge) or (spec.le is not None and number > spec.le):
            return None, rules.OUT_OF_RANGE
        return number, None
    return _timestamp(spec, text)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=64)
def _seconds_range(since: dt.datetime, before: dt.datetime) -> tuple[float, float]:
    return rules.seconds_range(since, before)


def _timestamp(spec: FieldSpec, text: str) -> tuple[dt.datetime | None, str | None]:
    assert spec.since is not None and spec.before is not None
    if _ISO_Z(text):  # the usual notation: no epoch, and what `normalise_iso` makes of it `_ISO` accepts
        return _instant(spec, text[:-1] + "+00:00")
    lo, hi = _seconds_range(spec.since, spec.before)
    if _INTEGER.match(text):
        whole = int(text)
        millis = whole >= rules.EPOCH_MS_THRESHOLD
        seconds = whole / 1000 if millis else float(whole)
        if not lo <= seconds < hi:
            return None, rules.OUT_OF_RANGE
        micros = whole * 1000 if millis else whole * 1_000_000
        return rules.EPOCH + dt.timedelta(microseconds=micros), None
    if _NUMBER.match(text):
        seconds = float(text)
        if not math.isfinite(seconds) or not lo <= seconds < hi:
            return None, rules.OUT_OF_RANGE
        return rules.EPOCH + dt.timedelta(microseconds=int(seconds * 1_000_000)), None
    iso = rules.normalise_iso(text)
    if not _ISO.match(iso):
        return None, rules.BAD_TYPE
    return _instant(spec, iso)


def _instant(spec: FieldSpec, iso: str) -> tuple[dt.datetime | None, str | None]:
    """An ISO-8601 text in `_ISO`'s shape -> the instant in UTC, checked against the field's range."""
    assert spec.since is not None and spec.before is not None
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None, rules.BAD_TYPE
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    if not spec.since <= when < spec.before:
        return None, rules.OUT_OF_RANGE
    return when, None
