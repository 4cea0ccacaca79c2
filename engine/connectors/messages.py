"""What travels between the IoT flow's steps: message batches in, readings / dead letters / aggregates out.

Items are micro-batches (a list per item), because Bytewax costs ~1.4 µs per item: one item per MQTT
message would spend more time in the engine than in our code.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterator, Sequence
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
    Accepted into their windows (not late, not already seen) once past the `windows` step.
    `codes` (int64, never negative) and `book`: the decoder's device codes (`engine.connectors.codes`), or None."""

    device_id: Any
    ts_us: Any
    values: Any
    received_at: float = 0.0
    codes: Any = None
    book: Any = None

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
        codes = None if self.codes is None else self.codes[index]
        return Readings(
            self.device_id[index], self.ts_us[index], self.values[index], self.received_at, codes, self.book
        )

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


class ClosedWindows(Sequence[WindowAgg]):
    """Closed windows as columns, read as a sequence of `WindowAgg` (each built when it is read), so the
    windows of every device closing at the same minute cost ~0.2 KB each instead of ~1.5 KB of Python
    objects (bench/iot_rss.py), and the sink stores the columns without rebuilding them. `n` (int64) and
    `mean`, `low`, `high`, `std` (float64) are (windows, M); a measurement with `n == 0` has no statistics
    and one with `n == 1` no std, whatever those arrays hold there."""

    __slots__ = ("closed_at", "count", "end", "high", "low", "mean", "n", "names", "start", "std")

    def __init__(
        self,
        names: list[str],
        start: np.ndarray,
        end: np.ndarray,
        count: np.ndarray,
        stats: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        closed_at: np.ndarray,
    ) -> None:
        self.names = names
        self.start, self.end, self.count, self.closed_at = start, end, count, closed_at
        self.n, self.mean, self.low, self.high, self.std = stats

    @classmethod
    def empty(cls) -> ClosedWindows:
        none = np.empty(0)
        grid = np.empty((0, len(MEASUREMENTS)))
        return cls([], none, none, np.empty(0, np.int64), (grid.astype(np.int64), grid, grid, grid, grid), none)

    @classmethod
    def concat(cls, parts: Sequence[ClosedWindows]) -> ClosedWindows:
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else cls.empty()

        def join(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        stats = (join("n"), join("mean"), join("low"), join("high"), join("std"))
        names = [d for p in parts for d in p.names]
        return cls(names, join("start"), join("end"), join("count"), stats, join("closed_at"))

    def __len__(self) -> int:
        return len(self.names)

    @typing.overload
    def __getitem__(self, index: int) -> WindowAgg: ...

    @typing.overload
    def __getitem__(self, index: slice) -> ClosedWindows: ...

    def __getitem__(self, index: int | slice) -> WindowAgg | ClosedWindows:
        if isinstance(index, slice):
            stats = (self.n[index], self.mean[index], self.low[index], self.high[index], self.std[index])
            return ClosedWindows(
                self.names[index], self.start[index], self.end[index], self.count[index], stats, self.closed_at[index]
            )
        if not -len(self) <= index < len(self):
            msg = "window index out of range"
            raise IndexError(msg)
        return next(iter(self[index : index + 1 or None]))

    def __iter__(self) -> Iterator[WindowAgg]:
        for lo in range(0, len(self), 1024):  # a slice's objects at a time
            part = self[lo : lo + 1024]
            per = [
                (k, m, a, b, sd) if k > 1 else ((k, m, a, b, None) if k else _NO_STATS)
                for k, m, a, b, sd in zip(
                    part.n.ravel().tolist(),
                    part.mean.ravel().tolist(),
                    part.low.ravel().tolist(),
                    part.high.ravel().tolist(),
                    part.std.ravel().tolist(),
                    strict=True,
                )
            ]
            yield from map(
                WindowAgg,
                part.names,
                part.start.tolist(),
                part.end.tolist(),
                part.count.tolist(),
                zip(*[iter(per)] * len(MEASUREMENTS), strict=True),
                part.closed_at.tolist(),
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal by content, like the list it stands for: unhashable

    def __repr__(self) -> str:
        return f"ClosedWindows({list(self)!r})"

    def stat_columns(self) -> np.ndarray:
        """(windows, M, len(STAT_NAMES)) float64 as the rows read: NaN where a statistic is None."""
        has = self.n > 0
        out = np.stack(
            [
                self.n.astype(np.float64),
                np.where(has, self.mean, np.nan),
                np.where(has, self.low, np.nan),
                np.where(has, self.high, np.nan),
                np.where(self.n > 1, self.std, np.nan),
            ],
            axis=-1,
        )
        return out


_NO_STATS = (0, None, None, None, None)


class WindowAggs(msgspec.Struct, frozen=True):
    rows: Sequence[WindowAgg]  # a list, or `ClosedWindows` (the windows step's)


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
