"""What travels between the IoT flow's steps: message batches in, readings / dead letters / aggregates out.

Items are micro-batches (a list per item), because Bytewax costs ~1.4 µs per item: one item per MQTT
message would spend more time in the engine than in our code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import numpy as np

from engine.schema import SensorReading

MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")
STAT_NAMES = ("count", "mean", "min", "max", "std")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


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


class Readings(msgspec.Struct, frozen=True, eq=False):
    """Readings as columns (one row per reading, in arrival order), so steps work on whole batches:
    `device_id` (numpy object array of str), `ts_us` (int64 microseconds since the epoch, UTC: exact, as
    stored), `values` (float64, shape (n, 4), one column per `MEASUREMENTS` name, NaN where absent; any
    memory order: `decode_batch` hands out `values.T` contiguous, one measurement after the other).
    Accepted into their windows (not late, not already seen) once past the `windows` step."""

    device_id: Any
    ts_us: Any
    values: Any
    received_at: float = 0.0

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def from_rows(cls, rows: list[SensorReading], received_at: float = 0.0) -> Readings:
        n = len(rows)
        ids = np.empty(n, dtype=object)
        ids[:] = [r.device_id for r in rows]
        ts = np.fromiter(((r.ts - _EPOCH) // _US for r in rows), dtype=np.int64, count=n)
        values = np.array(
            [(r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_g) for r in rows], dtype=np.float64
        ).reshape(n, len(MEASUREMENTS))
        return cls(ids, ts, values, received_at)

    @classmethod
    def empty(cls, received_at: float = 0.0) -> Readings:
        return cls(
            np.empty(0, dtype=object),
            np.empty(0, dtype=np.int64),
            np.empty((0, len(MEASUREMENTS)), dtype=np.float64),
            received_at,
        )

    def take(self, index: Any) -> Readings:
        """The rows at `index` (integer positions or a boolean mask), in that order."""
        return Readings(self.device_id[index], self.ts_us[index], self.values[index], self.received_at)

    @property
    def seconds(self) -> Any:
        """Event times as float epoch seconds (`datetime.timestamp()` of each row, exactly)."""
        return self.ts_us / 1e6

    @property
    def rows(self) -> list[SensorReading]:
        """The readings as `SensorReading`s (for the few that leave the columnar path: late ones, tests)."""
        return [
            row(d, t, v)
            for d, t, v in zip(self.device_id.tolist(), self.ts_us.tolist(), self.values.tolist(), strict=True)
        ]


def row(device_id: str, ts_us: int, values: list[float]) -> SensorReading:
    """One reading from its columnar parts (NaN -> None)."""
    m = [None if v != v else v for v in values]
    return SensorReading(
        device_id=device_id,
        ts=_EPOCH + dt.timedelta(microseconds=ts_us),
        temperature_c=m[0],
        humidity_pct=m[1],
        pressure_hpa=m[2],
        vibration_g=m[3],
    )


def to_datetime(ts_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ts_us)


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
