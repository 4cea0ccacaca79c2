"""The text-level rules both validators share: missing tokens, number and timestamp shapes, reason codes.

Both executors (vectorised `frame`, per-record `record`) take their regular expressions and constants from
here, so a rule changes in one place.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any, Final

import msgspec

# Reason codes: stable strings stored in `rejects.reason`. Documented in README ("Reject reasons").
MISSING_FIELD: Final = "missing_field"  # a required field is absent or empty
BAD_TYPE: Final = "bad_type"  # not a number / not a timestamp
OUT_OF_RANGE: Final = "out_of_range"  # a number or instant outside its allowed range
INVALID_VALUE: Final = "invalid_value"  # a string of the wrong length or with forbidden characters
INVALID_CHOICE: Final = "invalid_choice"  # not one of the allowed values
NO_MEASUREMENT: Final = "no_measurement"  # none of the "at least one of" fields is present
MALFORMED_ROW: Final = "malformed_row"  # a CSV row with the wrong number of fields
BAD_JSON: Final = "bad_json"  # an NDJSON line that is not JSON
NOT_AN_OBJECT: Final = "not_an_object"  # a JSON record that is not an object
UNREADABLE_FILE: Final = "unreadable_file"  # the whole file cannot be read
LATE: Final = "late"  # a valid reading that arrived after its event-time window closed (IoT flow)

REASONS: Final = {
    MISSING_FIELD: "a required field is absent or empty",
    BAD_TYPE: "a value of the wrong type (not a number, not a timestamp)",
    OUT_OF_RANGE: "a number or instant outside its allowed range (never clamped)",
    INVALID_VALUE: "a string of the wrong length or with forbidden characters",
    INVALID_CHOICE: "not one of the allowed values",
    NO_MEASUREMENT: "none of the fields of which at least one is required is present",
    MALFORMED_ROW: "a CSV row with the wrong number of fields",
    BAD_JSON: "a line or document that is not valid JSON",
    NOT_AN_OBJECT: "a JSON record that is not an object",
    UNREADABLE_FILE: "the whole file cannot be read (empty, unknown format, truncated, undecodable)",
    LATE: "a valid reading that arrived after its window closed (beyond the allowed lateness)",
}

# What "trimming" removes: Unicode White_Space (as Polars/Rust define it; Python's str.strip() would also
# remove \x1c-\x1f, so both validators strip exactly this set).
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
PADDED_RE: Final = "^[" + WHITESPACE + "]|[" + WHITESPACE + "]$"

# Strings that mean "missing", compared after trimming, in any case.
MISSING_RE: Final = r"(?i)^(|na|n/a|null|nan|none)$"
MISSING_TOKENS: Final = frozenset({"", "na", "n/a", "null", "nan", "none"})

# A decimal number: optional sign, digits with an optional fraction, optional exponent. No '_', no 'inf'.
NUMBER_RE: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# An integer short enough for int64 arithmetic on epoch values.
INTEGER_RE: Final = r"^[+-]?[0-9]{1,18}$"
# The ISO-8601 shapes we accept (after ' ' -> 'T' and 'Z' -> '+00:00'): a date, optionally a time
# (minutes or seconds, up to 6 fraction digits), optionally an offset.
ISO_RE: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:[+-][0-9]{2}:?[0-9]{2})?)?$"
)
# An integer epoch at or above this is milliseconds, below it seconds.
EPOCH_MS_THRESHOLD: Final = 100_000_000_000
EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4096)  # per key of every record on the per-record path: the same few names
def clean_column_name(name: str) -> str:
    """Lower-case, trim, drop a BOM, spaces and hyphens to underscores: ' Temp-C ' -> 'temp_c'."""
    out = name.replace("\ufeff", "").strip(WHITESPACE).lower()
    return "_".join(out.replace("-", " ").split())


def to_text(value: Any) -> str | None:
    """How any decoded JSON value is seen by the text rules: the one conversion both paths use."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value)
    return msgspec.json.encode(value).decode()


def normalise_iso(text: str) -> str:
    """'2024-01-01 10:00Z' -> '2024-01-01T10:00+00:00' (the first space only; a trailing Z/z only)."""
    text = text.replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return text


def seconds_range(since: dt.datetime, before: dt.datetime) -> tuple[float, float]:
    """An instant range as epoch seconds [lo, hi)."""
    return (since - EPOCH).total_seconds(), (before - EPOCH).total_seconds()
