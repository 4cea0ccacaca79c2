"""The sensor_reading and interaction rules, one case per rule, through the per-record validator."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.schema import INTERACTION, SENSOR_READING, Interaction, SensorReading, get_schema
from engine.validation import Problem, validate_record

UTC = dt.UTC


def ok(record: dict, **kw) -> SensorReading:
    out = validate_record(SENSOR_READING, record, **kw)
    assert isinstance(out, SensorReading), out
    return out


def bad(record: dict, **kw) -> Problem:
    out = validate_record(SENSOR_READING, record, **kw)
    assert isinstance(out, Problem), out
    return out


BASE = {"device_id": "dev-1", "ts": "2024-05-01T12:00:00Z", "temperature_c": 21.5}


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2024-05-01T12:00:00Z", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 14:00:00+0200", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),  # naive = UTC
        ("2024-05-01T12:00", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:00:00.250Z", dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        (1714564800, dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),  # epoch seconds
        ("1714564800", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800.5, dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        (1714564800000, dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),  # >= 1e11: milliseconds
        ("1714564800123", dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
    ],
)
def test_timestamp_notations_normalise_to_utc(ts: object, expected: dt.datetime) -> None:
    assert ok({**BASE, "ts": ts}).ts == expected


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("1999-12-31T23:59:59Z", "out_of_range"),
        ("2030-01-01T00:00:00Z", "out_of_range"),  # the upper bound is exclusive
        (99_999_999_999, "out_of_range"),  # just below the ms threshold: seconds, year 5138
        ("yesterday", "bad_type"),
        ("2024-02-30T00:00:00Z", "bad_type"),
        ("2024-5-1", "bad_type"),
        (True, "bad_type"),
        (None, "missing_field"),
        ("  ", "missing_field"),
    ],
)
def test_bad_timestamps(ts: object, reason: str) -> None:
    assert bad({**BASE, "ts": ts}).reason == reason


def test_lower_bound_is_inclusive() -> None:
    assert ok({**BASE, "ts": "2000-01-01T00:00:00Z"}).ts == dt.datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("temperature_c", 125.01, "out_of_range"),
        ("temperature_c", -40.5, "out_of_range"),
        ("humidity_pct", 100.1, "out_of_range"),
        ("pressure_hpa", 299, "out_of_range"),
        ("vibration_g", 16.5, "out_of_range"),
        ("temperature_c", "hot", "bad_type"),
        ("temperature_c", "1_000", "bad_type"),
        ("temperature_c", "inf", "bad_type"),
        ("temperature_c", [1], "bad_type"),
    ],
)
def test_measurement_rules_reject_whole_record_without_clamping(field: str, value: object, reason: str) -> None:
    assert bad({**BASE, field: value}).reason == reason


def test_range_edges_are_inclusive() -> None:
    r = ok({**BASE, "temperature_c": 125, "humidity_pct": 0, "pressure_hpa": 1100, "vibration_g": 16})
    assert (r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_g) == (125, 0, 1100, 16)


@pytest.mark.parametrize("device", ["a b", "dev/1", "x" * 65, "dév"])
def test_device_id_rules(device: str) -> None:
    assert bad({**BASE, "device_id": device}).reason == "invalid_value"


def test_device_id_is_trimmed_and_may_use_punctuation() -> None:
    assert ok({**BASE, "device_id": "  site-1:rack_2.sensor-3  "}).device_id == "site-1:rack_2.sensor-3"
    assert ok({**BASE, "device_id": "x" * 64}).device_id == "x" * 64


@pytest.mark.parametrize("token", ["", "NA", "n/a", "NULL", "NaN", "None", " na "])
def test_missing_tokens_mean_missing(token: str) -> None:
    r = ok({**BASE, "temperature_c": token, "humidity_pct": "40"})
    assert r.temperature_c is None and r.humidity_pct == 40.0
    assert bad({**BASE, "device_id": token}).reason == "missing_field"


def test_at_least_one_measurement() -> None:
    p = bad({"device_id": "d", "ts": "2024-01-01", "temperature_c": "NA"})
    assert p.reason == "no_measurement"
    assert "at least one" in p.message


def test_aliases_and_messy_names() -> None:
    r = ok(
        {" Device ": "d1", "TimeStamp": "2024-01-01", "RH": "55", "Pressure": 1000, "Vibration": "0,5"},
        decimal_comma=True,
    )
    assert (r.device_id, r.humidity_pct, r.pressure_hpa, r.vibration_g) == ("d1", 55.0, 1000.0, 0.5)


def test_exact_name_wins_over_alias() -> None:
    r = ok({"temp": 1, "temperature_c": 2, "device_id": "d", "ts": "2024-01-01"})
    assert r.temperature_c == 2


def test_decimal_comma_only_when_the_source_says_so() -> None:
    assert bad({**BASE, "temperature_c": "21,5"}).reason == "bad_type"
    assert ok({**BASE, "temperature_c": "21,5"}, decimal_comma=True).temperature_c == 21.5


def test_extra_fields_are_ignored() -> None:
    assert ok({**BASE, "firmware": "1.2", "note": None}).device_id == "dev-1"


def test_every_problem_is_in_the_message_and_the_first_is_the_reason() -> None:
    p = bad({"device_id": "bad id", "ts": "soon", "temperature_c": 500})
    assert p.reason == "invalid_value"
    assert "device_id" in p.message and "ts" in p.message and "temperature_c" in p.message


def test_not_an_object() -> None:
    assert validate_record(SENSOR_READING, [1, 2]) == Problem("not_an_object", "expected a JSON object, got list")


def test_second_schema_is_declared_the_same_way() -> None:
    schema = get_schema("interaction")
    assert schema is INTERACTION and schema.table == "interactions"
    r = validate_record(schema, {"user": "u1", "item": "i9", "event": " Click ", "timestamp": 1714564800})
    assert isinstance(r, Interaction) and r.event == "click" and r.value is None
    p = validate_record(schema, {"user_id": "u1", "item_id": "i9", "event": "like", "ts": 1714564800})
    assert isinstance(p, Problem) and p.reason == "invalid_choice"


def test_unknown_schema_is_a_usage_error_listing_known_ones() -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="interaction, sensor_reading"):
        get_schema("nope")
