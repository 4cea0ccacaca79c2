"""The IoT flow: MQTT -> decode (shared schema decoder) -> validate -> rejects to the dead letter ->
per-device event-time tumbling windows (late readings to the dead letter as `late`) -> per-device River
anomaly detection -> DuckDB (`readings`, `readings_1m`, `anomalies`, `rejects`; idempotent) and alerts on
`alerts/{device_id}` plus a live feed for the dashboard.

    tidegate run iot --mqtt mqtt://127.0.0.1:1883 --db tidegate.duckdb --recovery-dir rec/ [--config flow.toml]
    TIDEGATE_IOT_CONFIG=flow.toml python -m bytewax.run flows.iot:flow -r rec/ -s 1 -b 0
    python -m bytewax.run "flows.iot:flow_from('flow.toml')" -i 0 -a "host1:2101;host2:2101" -r rec/ -s 1 -b 0

Items are micro-batches all the way (a batch of messages, then a batch of readings per shard), so Bytewax's
per-item cost is paid per batch, and readings travel as columns (`Readings`: numpy arrays), so every step
works on a whole batch at once: decoding and validation column-wise, windows as group-bys merged into
per-device running aggregates (closed windows come out as columns too: `ClosedWindows`, stored as they
are), the `ewz` detector as numpy rounds over all devices of a shard. Devices are
spread over `shard_count(cfg)` keyed states by a stable hash (`windows.shards`; by default one per MQTT
partition, so one in a single process); the DuckDB sink has one partition (one writer).
The logic lives in plain, Bytewax-free classes (`engine.connectors.decode`,
`engine.connectors.windows.ShardWindows`, `models.anomaly.ShardDetectors`); this module only wires them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import tomllib
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bytewax.operators as op
import msgspec
import numpy as np
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink, FixedPartitionedSink, StatefulSinkPartition, StatelessSinkPartition

from engine import metrics
from engine.connectors.codes import CodeSlots
from engine.connectors.decode import decode_batch
from engine.connectors.messages import (
    MEASUREMENTS,
    STAT_NAMES,
    Anomalies,
    ClosedWindows,
    DeadLetter,
    DeadLetters,
    LateReadings,
    MessageBatch,
    Readings,
    WindowAggs,
)
from engine.connectors.mqtt import MqttConfig
from engine.connectors.slots import lookup
from engine.connectors.windows import ShardWindows, WindowConfig
from engine.errors import UsageError
from engine.schema import SENSOR_READING, SensorReading
from engine.storage import Columns, Store
from engine.validation.rules import LATE
from models.anomaly import DetectorConfig, ShardDetectors

FLOW = "iot"
Clock = Callable[[], float]


class SinkConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    db: str = "tidegate.duckdb"
    run_id: str = "iot"  # rejects are idempotent per (run_id, source, position): keep it stable across restarts
    # An edge gateway is small: cap DuckDB's buffer pool (None: DuckDB's default, 80% of RAM). Not much below
    # 32: every column being appended to holds a 256 KB block until the next checkpoint (~25 MB over the four
    # tables), and with 16 a checkpoint fails within minutes at 10 000 devices (bench/iot_rss.py).
    duckdb_memory_mb: int | None = 32
    duckdb_threads: int | None = 1  # the flow is one core's work; more DuckDB threads mostly cost memory
    # DuckDB keeps some metadata per appended row in memory until its connection closes (~0.2 MB per million
    # readings, more for the wide `readings_1m`): the sink reopens it after this many rows (None: never).
    reopen_after_rows: int | None = 5_000_000

    def duckdb_settings(self) -> dict[str, str | int | bool]:
        """The store connection's DuckDB settings (file ingestion keeps DuckDB's defaults)."""
        out: dict[str, str | int | bool] = {}
        if self.duckdb_memory_mb:
            out["memory_limit"] = f"{int(self.duckdb_memory_mb)}MB"
        if self.duckdb_threads:
            out["threads"] = int(self.duckdb_threads)
        return out


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    topic: str = "alerts/{device_id}"
    live_topic: str = "tidegate/live"  # closed windows and anomalies for the dashboard (QoS 0)


class IotConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every knob of the IoT flow, in one typed object (TOML sections of the same names)."""

    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    windows: WindowConfig = msgspec.field(default_factory=WindowConfig)
    detect: DetectorConfig = msgspec.field(default_factory=DetectorConfig)
    sink: SinkConfig = msgspec.field(default_factory=SinkConfig)
    alerts: AlertConfig = msgspec.field(default_factory=AlertConfig)
    recovery_dir: str | None = None  # must match bytewax.run -r when run that way
    epoch_s: float = 1.0  # Bytewax epoch = snapshot interval; acks wait for a committed snapshot
    stop_after_idle_s: float | None = None  # end the flow when nothing arrived for this long (demo, tests)


def load_config(path: str | Path | None = None, **sections: dict[str, Any]) -> IotConfig:
    """The config from a TOML file (or defaults), with `sections` merged over it (CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            msg = f"cannot read flow config {path}: {exc}"
            raise UsageError(msg) from exc
    for name, values in sections.items():
        if isinstance(values, dict):
            data[name] = {**data.get(name, {}), **values}
        elif values is not None:
            data[name] = values
    try:
        return msgspec.convert(data, IotConfig)
    except msgspec.ValidationError as exc:
        msg = f"bad flow config{f' {path}' if path else ''}: {exc}"
        raise UsageError(msg) from exc


# -- steps ---------------------------------------------------------------------------------------------
def _decode(batch: MessageBatch) -> tuple[Readings, list[DeadLetter], float]:
    readings, dead = decode_batch(batch)
    metrics.events(FLOW, "decode", "received").inc(len(batch.messages))
    metrics.events(FLOW, "decode", "accepted").inc(len(readings))
    if dead:
        metrics.events(FLOW, "decode", "rejected").inc(len(dead))
    return readings, dead, batch.received_at


def shard_count(cfg: IotConfig) -> int:
    """Keyed states for windows and detectors: `windows.shards`, else one per MQTT partition."""
    return cfg.windows.shards or max(cfg.mqtt.partitions, 1)


class Sharder:
    """device_id -> shard (stable crc32, never Python's salted hash; by device code once known, the names'
    cache is bounded); one columnar batch per shard, arrival order kept."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.keys = [str(i) for i in range(shards)]
        self.cache: dict[str, int] = {}
        self._codes = CodeSlots()  # a device's shard never changes: nothing to forget

    def _add(self, ids: list[str]) -> np.ndarray:
        cache = self.cache
        if len(cache) > 200_000:
            cache.clear()
        for d in ids:
            if d not in cache:
                cache[d] = zlib.crc32(d.encode()) % self.shards
        return lookup(cache, ids)

    def __call__(self, item: tuple[Readings, list[DeadLetter], float]) -> list[tuple[str, Readings]]:
        readings = item[0]
        n = len(readings)
        if not n:
            return []
        if self.shards == 1:
            return [("0", readings)]
        shard = self._codes.slots(readings, self.cache, self._add)
        order = np.argsort(shard, kind="stable")
        bounds = np.cumsum(np.bincount(shard, minlength=self.shards)).tolist()
        out = []
        lo = 0
        for key, hi in zip(self.keys, bounds, strict=True):
            if hi > lo:
                out.append((key, readings if hi - lo == n else readings.take(order[lo:hi])))
            lo = hi
        return out


class _WindowLogic(StatefulLogic[Readings, Any, bytes | None]):
    def __init__(self, cfg: WindowConfig, state: bytes | None, clock: Clock, durable: bool = True) -> None:
        self.cfg = cfg
        self.clock = clock
        self.durable = durable
        self.win = ShardWindows.restore(cfg, state, clock())

    def on_item(self, value: Readings) -> tuple[list[Any], bool]:
        now = self.clock()
        accepted, late, dups, closed = self.win.add(value, now)
        out: list[Any] = []
        if len(accepted):
            out.append(accepted)
            metrics.events(FLOW, "windows", "accepted").inc(len(accepted))
        if late:
            out.append(LateReadings([r for r, _ in late], value.received_at, [w for _, w in late]))
            metrics.events(FLOW, "windows", "late").inc(len(late))
        if dups:
            metrics.events(FLOW, "windows", "duplicate").inc(dups)
        if closed:
            out.append(WindowAggs(closed))
        return out, StatefulLogic.RETAIN

    def on_notify(self) -> tuple[list[Any], bool]:
        closed = self.win.close_due(self.clock())
        return ([WindowAggs(closed)] if closed else []), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[Any], bool]:
        closed = self.win.close_all(self.clock())
        return ([WindowAggs(closed)] if closed else []), StatefulLogic.RETAIN

    def notify_at(self) -> dt.datetime | None:
        if not self.win.devices:
            return None
        return dt.datetime.fromtimestamp(self.clock() + self.cfg.tick_s, dt.UTC)

    def snapshot(self) -> bytes | None:
        return self.win.snapshot(self.clock()) if self.durable else None  # see build_flow's `durable`


class _DetectLogic(StatefulLogic[Readings, Anomalies, bytes | None]):
    def __init__(self, cfg: DetectorConfig, state: bytes | None, durable: bool = True) -> None:
        self.durable = durable
        self.det = ShardDetectors.restore(cfg, state)

    def on_item(self, value: Readings) -> tuple[list[Anomalies], bool]:
        found = self.det.process(value)
        return ([Anomalies(found)] if found else []), StatefulLogic.RETAIN

    def snapshot(self) -> bytes | None:
        return self.det.snapshot() if self.durable else None


def _accepted(kv: tuple[str, Any]) -> tuple[str, Readings] | None:
    return kv if isinstance(kv[1], Readings) else None


# -- sinks ---------------------------------------------------------------------------------------------
def _concat(batches: list[Readings]) -> Readings:
    if len(batches) == 1:
        return batches[0]
    return Readings(
        np.concatenate([b.device_id for b in batches]),
        np.concatenate([b.ts_us for b in batches]),
        np.concatenate([b.values for b in batches]),
        batches[-1].received_at,
    )


def _utc(seconds: list[float] | np.ndarray) -> np.ndarray:
    """Epoch seconds as datetime64[us] (UTC), truncated to the microsecond as DuckDB stores them."""
    return (np.asarray(seconds, dtype=np.float64) * 1_000_000).astype(np.int64).view("datetime64[us]")


def _strings(values: list[str] | list[str | None]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def readings_columns(readings: Readings | list[SensorReading]) -> Columns:
    """The `readings` table's columns, as numpy arrays DuckDB scans in place (no polars, no pyarrow)."""
    batch = readings if isinstance(readings, Readings) else Readings.from_rows(readings)
    return {
        "device_id": batch.device_id,
        "ts": np.asarray(batch.ts_us, dtype=np.int64).view("datetime64[us]"),
        **{m: np.ascontiguousarray(batch.values[:, i]) for i, m in enumerate(MEASUREMENTS)},  # NaN: NULL
    }


def windows_columns(aggs: WindowAggs) -> Columns:
    rows = aggs.rows
    if isinstance(rows, ClosedWindows):  # the windows step's columns, as they are
        stats = rows.stat_columns()
        data: dict[str, np.ndarray] = {
            "device_id": _strings(rows.names),
            "window_start": _utc(rows.start),
            "window_end": _utc(rows.end),
            "count": np.asarray(rows.count, dtype=np.int64),
        }
        closed_at = rows.closed_at
    else:
        stats = np.array([w.stats for w in rows], dtype=np.float64)
        data = {
            "device_id": _strings([w.device_id for w in rows]),
            "window_start": _utc([w.window_start for w in rows]),
            "window_end": _utc([w.window_end for w in rows]),
            "count": np.array([w.count for w in rows], dtype=np.int64),
        }
        closed_at = [w.closed_at for w in rows]
    stats = stats.reshape(len(rows), len(MEASUREMENTS), len(STAT_NAMES))
    for i, m in enumerate(MEASUREMENTS):
        for j, s in enumerate(STAT_NAMES):
            col = np.ascontiguousarray(stats[:, i, j])  # None (no value, std below two): NaN, stored as NULL
            data[f"{m}_{s}"] = col.astype(np.int64) if s == "count" else col
    data["closed_at"] = _utc(closed_at)
    return data


def _close_lags(aggs: WindowAggs) -> np.ndarray:
    """Per window: when it closed minus its end (event time), in seconds."""
    rows = aggs.rows
    if isinstance(rows, ClosedWindows):
        return np.asarray(rows.closed_at - rows.end, dtype=np.float64)
    return np.array([row.closed_at - row.window_end for row in rows], dtype=np.float64)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def anomalies_columns(found: list[Any], detected_at: float) -> Columns:
    return {
        "device_id": _strings([a.device_id for a in found]),
        "ts": np.array([(a.ts - _EPOCH) // _US for a in found], dtype=np.int64).view("datetime64[us]"),
        "measurement": _strings([a.measurement for a in found]),
        "kind": _strings([a.kind for a in found]),
        "value": np.array([a.value for a in found], dtype=np.float64),
        "score": np.array([a.score for a in found], dtype=np.float64),
        "expected": np.array([a.expected for a in found], dtype=np.float64),  # None: NaN, stored as NULL
        "detector": _strings([a.detector for a in found]),
        "detected_at": _utc([detected_at] * len(found)),
    }


def _rejects_columns(rows: list[DeadLetter], run_id: str) -> Columns:
    return {
        "source": _strings([d.source for d in rows]),
        "position": _strings([d.position for d in rows]),
        "raw": _strings([d.raw for d in rows]),
        "reason": _strings([d.reason for d in rows]),
        "message": _strings([d.message for d in rows]),
        "received_at": _utc([d.received_at for d in rows]),
        "run_id": _strings([run_id] * len(rows)),
        "schema": _strings([SENSOR_READING.name] * len(rows)),
    }


# Closed windows per upsert: every device's window closes at the same minute, and one statement for all of
# them (24 columns) costs DuckDB ~6 MB of working memory at 10 000 devices, ~3 MB in slices of 1 024
# (bench/iot_rss.py); the rows stored are the same.
_WINDOW_ROWS = 1024


class _StorePartition(StatefulSinkPartition[Any, None]):
    """Writes synchronously, so by the time Bytewax snapshots (and the source may ack) it is stored."""

    def __init__(self, cfg: SinkConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = self._open()
        self.written = 0  # rows written since the store was opened

    def _open(self) -> Store:
        store = Store(self.cfg.db, settings=self.cfg.duckdb_settings())
        store.ensure(SENSOR_READING)
        store.upsert_windows({})  # creates the tables
        store.upsert_anomalies({})
        return store

    def _count(self, rows: int) -> None:
        """Reopen the store once `reopen_after_rows` rows were written through it (bounds DuckDB's memory)."""
        self.written += rows
        if self.cfg.reopen_after_rows and self.written >= self.cfg.reopen_after_rows:
            self.store.close()
            self.store = self._open()
            self.written = 0

    def write_batch(self, items: list[Any]) -> None:
        readings: list[Readings] = []
        late: list[LateReadings] = []
        dead: list[DeadLetter] = []
        windows: list[WindowAggs] = []
        found: list[Any] = []
        for it in items:
            if isinstance(it, Readings):
                readings.append(it)
            elif isinstance(it, DeadLetters):
                dead.extend(it.rows)
            elif isinstance(it, LateReadings):
                late.append(it)
            elif isinstance(it, WindowAggs):
                windows.append(it)
            elif isinstance(it, Anomalies):
                found.extend(it.rows)
        store = self.store
        if readings:
            batch = _concat(readings)
            stored = store.insert_new(SENSOR_READING, readings_columns(batch))
            now = self.clock()
            metrics.events(FLOW, "store", "stored").inc(stored)
            if stored < len(batch):
                metrics.events(FLOW, "store", "duplicate").inc(len(batch) - stored)
            metrics.observe_many(metrics.END_TO_END.labels(FLOW), now - batch.seconds)
        if late:
            dead.extend(self._late(late))
        if dead:
            store.add_rejects(_rejects_columns(dead, self.cfg.run_id))
        for w in windows:
            for lo in range(0, len(w.rows), _WINDOW_ROWS):  # all devices close at the minute: bounded slices
                part = WindowAggs(w.rows[lo : lo + _WINDOW_ROWS])
                store.upsert_windows(windows_columns(part))
                metrics.observe_many(metrics.WINDOW_CLOSE_LAG.labels(FLOW), np.maximum(_close_lags(part), 0.0))
        if found:
            store.upsert_anomalies(anomalies_columns(found, self.clock()))
            for a in found:
                metrics.ANOMALIES.labels(FLOW, a.measurement, a.kind).inc()
        self._count(sum(map(len, readings)) + len(dead) + sum(len(w.rows) for w in windows) + len(found))

    def _late(self, batches: list[LateReadings]) -> list[DeadLetter]:
        """Late readings that storage already holds were redeliveries (duplicates), not rejects."""
        rows = [r for b in batches for r in b.rows]
        known = self.store.stored_positions(SENSOR_READING, readings_columns(rows))
        out = []
        k = 0
        for b in batches:
            for r, wm in zip(b.rows, b.watermarks, strict=True):
                if k not in known:
                    when = dt.datetime.fromtimestamp(wm, dt.UTC).isoformat()
                    out.append(
                        DeadLetter(
                            source=f"late:{r.device_id}",
                            position=f"{r.device_id}@{r.ts.isoformat()}",
                            raw=msgspec.json.encode(r).decode(),
                            reason=LATE,
                            message=f"ts {r.ts.isoformat()} is behind the device's watermark {when}",
                            received_at=b.received_at,
                        )
                    )
                k += 1
        if known:
            metrics.events(FLOW, "store", "duplicate").inc(len(known))
        if out:
            metrics.events(FLOW, "store", "late_rejected").inc(len(out))
        return out

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self.store.close()


class StoreSink(FixedPartitionedSink[Any, None]):
    """One partition: exactly one process writes the DuckDB file."""

    def __init__(self, cfg: SinkConfig, clock: Clock = time.time) -> None:
        self.cfg = cfg
        self.clock = clock

    def list_parts(self) -> list[str]:
        return ["db"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _StorePartition:
        return _StorePartition(self.cfg, self.clock)


class _AlertPartition(StatelessSinkPartition[Any]):
    def __init__(self, cfg: IotConfig, worker_index: int) -> None:
        from engine.connectors.publisher import Publisher

        self.cfg = cfg.alerts
        self.pub = Publisher(cfg.mqtt, f"{cfg.mqtt.client_id}-alerts-{worker_index}", connect_timeout_s=0)
        self.enc = msgspec.json.Encoder()

    def write_batch(self, items: list[Any]) -> None:
        live: list[dict[str, Any]] = []
        for it in items:
            if isinstance(it, Anomalies):
                for a in it.rows:
                    body = msgspec.structs.asdict(a)
                    self.pub.publish(self.cfg.topic.format(device_id=a.device_id), self.enc.encode(body))
                    live.append({"kind": "anomaly", **body})
            elif isinstance(it, WindowAggs):
                live.extend(_live_window(w) for w in it.rows)
        if live and self.cfg.live_topic:
            self.pub.publish(self.cfg.live_topic, self.enc.encode(live), qos=0)

    def close(self) -> None:
        self.pub.flush(5)
        self.pub.close()


def _live_window(w: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "window",
        "device_id": w.device_id,
        "window_start": w.window_start,
        "window_end": w.window_end,
        "count": w.count,
    }
    for m, s in zip(MEASUREMENTS, w.stats, strict=True):
        if s[0]:
            out[m] = dict(zip(STAT_NAMES, s, strict=True))
    return out


class AlertSink(DynamicSink[Any]):
    """Anomalies to `alerts/{device_id}` (QoS 1, at least once: alerts carry their natural key so consumers
    can drop a repeat after a resume) and windows + anomalies to the live topic."""

    def __init__(self, cfg: IotConfig) -> None:
        self.cfg = cfg

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _AlertPartition:
        return _AlertPartition(self.cfg, worker_index)


# -- wiring --------------------------------------------------------------------------------------------
def build_flow(
    cfg: IotConfig,
    *,
    source: Source[MessageBatch] | None = None,
    clock: Clock = time.time,
    store: bool = True,
    alerts: bool | None = None,
    extra_sink: Any = None,
    durable: bool = True,
) -> Dataflow:
    """The IoT dataflow. `source` defaults to MQTT per `cfg.mqtt`; `extra_sink` (tests, benchmarks) receives
    every item the store would. `durable=False` (a run without recovery) makes the stateful steps' snapshots
    empty: Bytewax takes them every epoch even without recovery, and at 10 000 devices serialising the windows
    and detectors costs ~10 ms of CPU and an ~8 MB transient each time, for nothing. Leave it on whenever
    recovery may be configured outside the flow (`python -m bytewax.run -r DIR`)."""
    if source is None:
        from engine.connectors.mqtt_source import MqttSource  # paho's client and SQLite: only when used

        recovery = Path(cfg.recovery_dir) if cfg.recovery_dir else None
        source = MqttSource(cfg.mqtt, recovery, listener=_mqtt_listener, stop_after_idle_s=cfg.stop_after_idle_s)
    flow = Dataflow(FLOW)
    raw = op.input("mqtt", flow, source)
    decoded = op.map("decode", raw, _decode)
    dead = op.filter_map("rejects", decoded, lambda d: DeadLetters(d[1]) if d[1] else None)
    sharded = op.flat_map("shard", decoded, Sharder(shard_count(cfg)))
    windowed = op.stateful("windows", sharded, lambda s: _WindowLogic(cfg.windows, s, clock, durable))
    accepted = op.filter_map("accepted", windowed, _accepted)
    found = op.stateful("detect", accepted, lambda s: _DetectLogic(cfg.detect, s, durable))
    out = op.merge("to_store", dead, op.map("w", windowed, _value), op.map("a", found, _value))
    if store:
        op.output("store", op.key_on("one_writer", out, lambda _: "db"), StoreSink(cfg.sink, clock))
    if extra_sink is not None:
        op.output("extra", out, extra_sink)
    if cfg.alerts.enabled if alerts is None else alerts:
        notes = op.filter("notable", out, lambda it: isinstance(it, Anomalies | WindowAggs))
        op.output("alerts", notes, AlertSink(cfg))
    return flow


def _value(kv: tuple[str, Any]) -> Any:
    return kv[1]


def _mqtt_listener(client: str, event: str, value: int) -> None:
    if event == "connected":
        metrics.MQTT_CONNECTED.labels(client).set(1)
        metrics.MQTT_CONNECTS.labels(client).inc()
    elif event == "disconnected":
        metrics.MQTT_CONNECTED.labels(client).set(0)
    elif event == "acked":
        metrics.MQTT_ACKED.labels(client).inc(value)


def flow_from(path: str | None = None) -> Dataflow:
    """For `python -m bytewax.run "flows.iot:flow_from('flow.toml')"`."""
    return build_flow(load_config(path))


def __getattr__(name: str) -> Any:
    # `python -m bytewax.run flows.iot:flow`: built on access, from $TIDEGATE_IOT_CONFIG (the edge reads env).
    if name == "flow":
        return flow_from(os.environ.get("TIDEGATE_IOT_CONFIG"))
    raise AttributeError(name)
