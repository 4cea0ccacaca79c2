"""What travels between the IoT flow's steps: message batches in, readings / dead letters / aggregates out.

Items are micro-batches (a list per item), because Bytewax costs ~1.4 µs per item: one item per MQTT
message would spend more time in the engine than in our code.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from engine.schema import SensorReading


class MessageBatch(msgspec.Struct, frozen=True):
    """Raw messages as received: `(topic, payload)` pairs, and when they arrived (epoch seconds, UTC)."""

    source: str
    messages: list[tuple[str, bytes]]
    received_at: float


class DeadLetter(msgspec.Struct, frozen=True):
    """One rejected message: where it came from, what it was, and why (a reason code from
    `engine.validation.rules`)."""

    source: str
    position: str
    raw: str
    reason: str
    message: str
    received_at: float


class DeadLetters(msgspec.Struct, frozen=True):
    rows: list[DeadLetter]


class Readings(msgspec.Struct, frozen=True):
    """Readings accepted into their windows (not late, not already seen), ready to store."""

    rows: list[SensorReading]
    received_at: float


class LateReadings(msgspec.Struct, frozen=True):
    """Valid readings that arrived after their window closed; they go to the dead letter as `late` unless
    storage already holds the same reading (then it was a redelivery, counted as a duplicate)."""

    rows: list[SensorReading]
    received_at: float
    watermarks: list[float]  # the device's watermark (epoch s) when each was judged late


class WindowAgg(msgspec.Struct, frozen=True, array_like=True):
    """One closed tumbling window of one device. `stats` holds, per measurement in `MEASUREMENTS`
    order, (count, mean, min, max, std); std is the sample std (NULL below two values)."""

    device_id: str
    window_start: float
    window_end: float
    count: int
    stats: tuple[tuple[int, float | None, float | None, float | None, float | None], ...]
    closed_at: float


class WindowAggs(msgspec.Struct, frozen=True):
    rows: list[WindowAgg]


class Anomaly(msgspec.Struct, frozen=True, kw_only=True):
    """One flagged reading: `kind` is 'spike' (far from the device's recent level) or 'stuck' (the same
    value repeated). The natural key is (device_id, ts, measurement)."""

    device_id: str
    ts: dt.datetime
    measurement: str
    kind: str
    value: float
    score: float
    expected: float | None
    detector: str


class Anomalies(msgspec.Struct, frozen=True):
    rows: list[Anomaly]


MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")
STAT_NAMES = ("count", "mean", "min", "max", "std")
