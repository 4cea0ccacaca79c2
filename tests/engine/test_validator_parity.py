"""One definition, two executors: the vectorised validator must agree with the per-record one on every record.

Hypothesis draws messy records (padding, missing tokens, decimal commas, every timestamp notation, garbage,
non-string JSON values) and checks verdict, reason code and typed values row by row.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.ingest.check import _field_columns, map_columns
from engine.io.readers import _text_frame
from engine.schema import INTERACTION, SENSOR_READING, Schema
from engine.validation import Problem, validate_record
from engine.validation.frame import validate_frame

pad = st.sampled_from(["", " ", "  ", "\t"])
missing = st.sampled_from(["", "NA", "n/a", "null", "NaN", "none", "None", " NA "])
garbage = st.sampled_from(["x", "1_0", "inf", "-Infinity", "0x10", "1e", "--1", "12abc", "∞", "1,2,3"])


@st.composite
def number_text(draw: st.DrawFn) -> object:
    x = draw(st.one_of(st.floats(-200, 2000, allow_nan=False), st.integers(-100, 1500)))
    kind = draw(st.sampled_from(["raw", "str", "comma", "exp", "padded"]))
    if kind == "raw":
        return x
    text = repr(x) if isinstance(x, float) else str(x)
    if kind == "comma":
        text = text.replace(".", ",")
    elif kind == "exp":
        text = f"{float(x):e}"
    elif kind == "padded":
        text = draw(pad) + text + draw(pad)
    return text


@st.composite
def ts_text(draw: st.DrawFn) -> object:
    lo, hi = dt.datetime(1995, 1, 1), dt.datetime(2035, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive; used as UTC
    when = draw(st.datetimes(lo, hi))
    when = when.replace(microsecond=draw(st.sampled_from([0, 0, 500000, 123456, 1000])))
    kind = draw(
        st.sampled_from(
            [
                "isoz",
                "iso_off",
                "naive_t",
                "naive_space",
                "date",
                "minutes",
                "epoch_s",
                "epoch_ms",
                "epoch_float",
                "epoch_str",
                "compact_off",
                "lowerz",
            ]
        )
    )
    aware = when.replace(tzinfo=dt.UTC)
    epoch = int(aware.timestamp())
    if kind == "isoz":
        return when.isoformat() + "Z"
    if kind == "lowerz":
        return when.isoformat(sep=" ") + "z"
    if kind == "iso_off":
        return aware.astimezone(dt.timezone(dt.timedelta(hours=draw(st.integers(-11, 12))))).isoformat()
    if kind == "compact_off":
        return aware.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).strftime("%Y-%m-%dT%H:%M:%S%z")
    if kind == "naive_t":
        return when.isoformat()
    if kind == "naive_space":
        return when.isoformat(sep=" ")
    if kind == "date":
        return when.date().isoformat()
    if kind == "minutes":
        return when.strftime("%Y-%m-%dT%H:%M")
    if kind == "epoch_s":
        return epoch
    if kind == "epoch_ms":
        return epoch * 1000 + when.microsecond // 1000
    if kind == "epoch_float":
        return epoch + when.microsecond / 1e6
    return draw(pad) + str(epoch) + draw(pad)


ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9._:-]{1,70}", fullmatch=True),
    st.text(min_size=0, max_size=8),
    pad.map(lambda p: p + "dev-1" + p),
    missing,
    st.integers(0, 10**6),
)


def value(kind_strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(kind_strategy, missing, garbage, st.none(), st.booleans())


sensor_records = st.fixed_dictionaries(
    {},
    optional={
        "device_id": ids,
        " Device ": ids,
        "ts": value(ts_text()),
        "timestamp": value(ts_text()),
        "temperature_c": value(number_text()),
        "temp": value(number_text()),
        "humidity_pct": value(number_text()),
        "RH": value(number_text()),
        "pressure_hpa": value(number_text()),
        "vibration_g": value(number_text()),
        "firmware": st.text(max_size=5),
    },
)
interaction_records = st.fixed_dictionaries(
    {"user_id": ids, "item_id": ids, "ts": value(ts_text())},
    optional={
        "event": st.one_of(st.sampled_from(["view", " Click", "CART", "purchase", "rating", "like", ""]), missing),
        "value": value(number_text()),
    },
)


def assert_parity(schema: Schema, records: list[dict], decimal_comma: bool) -> None:
    frame = _text_frame(records)
    fields, _ = map_columns(schema, frame.columns)
    renamed = _field_columns(frame, fields)
    result = validate_frame(schema, renamed, decimal_comma=decimal_comma, height=len(records))
    reasons = dict(zip(result.rejected["index"].to_list(), result.rejected["reason"].to_list(), strict=True))
    ok_rows = iter(result.ok.to_dicts())
    for i, rec in enumerate(records):
        single = validate_record(schema, rec, decimal_comma=decimal_comma)
        if isinstance(single, Problem):
            assert reasons.get(i) == single.reason, (rec, single, reasons.get(i))
        else:
            assert i not in reasons, (rec, reasons[i])
            row = next(ok_rows)
            for f in schema.names:
                assert row[f] == getattr(single, f), (rec, f, row[f], getattr(single, f))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sensor_records, min_size=1, max_size=25), st.booleans())
def test_sensor_reading_parity(records: list[dict], decimal_comma: bool) -> None:
    assert_parity(SENSOR_READING, records, decimal_comma)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(interaction_records, min_size=1, max_size=25))
def test_interaction_parity(records: list[dict]) -> None:
    assert_parity(INTERACTION, records, False)


def test_fast_path_and_full_rules_agree_on_a_large_uniform_column() -> None:
    """A batch large enough to take the fast paths, with a few odd rows that must fall through to the full rules."""
    rows = [
        {
            "device_id": f"dev-{i:05d}",
            "ts": f"2024-01-01T00:{i % 60:02d}:{i % 60:02d}Z",
            "temperature_c": f"{i % 100}.5",
        }
        for i in range(2000)
    ]
    rows[10]["ts"] = "2024-01-01 00:00:00+01:00"
    rows[11]["temperature_c"] = " 7 "
    rows[12]["device_id"] = " padded "
    rows[13]["ts"] = "1999-01-01T00:00:00Z"
    rows[14]["temperature_c"] = "NaN"
    assert_parity(SENSOR_READING, rows, False)
