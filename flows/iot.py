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
per-device running aggregates, the `ewz` detector as numpy rounds over all devices of a shard. Devices are
spread over `windows.shards` keyed states by a stable hash; the DuckDB sink has one partition (one writer).
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
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink, FixedPartitionedSink, StatefulSinkPartition, StatelessSinkPartition

from engine import metrics
from engine.connectors.decode import decode_batch
from engine.connectors.messages import (
    MEASUREMENTS,
    STAT_NAMES,
    Anomalies,
    DeadLetter,
    DeadLetters,
    LateReadings,
    MessageBatch,
    Readings,
    WindowAggs,
)
from engine.connectors.mqtt import MqttConfig
from engine.connectors.mqtt_source import MqttSource
from engine.connectors.windows import ShardWindows, WindowConfig
from engine.errors import UsageError
from engine.schema import SENSOR_READING, SensorReading
from engine.storage import Store
from engine.validation.rules import LATE
from models.anomaly import DetectorConfig, ShardDetectors

FLOW = "iot"
Clock = Callable[[], float]


class SinkConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    db: str = "tidegate.duckdb"
    run_id: str = "iot"  # rejects are idempotent per (run_id, source, position): keep it stable across restarts
    duckdb_memory_mb: int | None = 64  # an edge gateway is small: cap DuckDB's buffer pool (None: its default)
    duckdb_threads: int | None = 1  # the flow is one core's work; more DuckDB threads mostly cost memory


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
    metrics.EVENTS.labels(FLOW, "decode", "received").inc(len(batch.messages))
    metrics.EVENTS.labels(FLOW, "decode", "accepted").inc(len(readings))
    if dead:
        metrics.EVENTS.labels(FLOW, "decode", "rejected").inc(len(dead))
    return readings, dead, batch.received_at


class Sharder:
    """device_id -> shard (stable crc32, never Python's salted hash; the cache is bounded); one columnar
    batch per shard, arrival order kept."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.keys = [str(i) for i in range(shards)]
        self.cache: dict[str, int] = {}

    def _shard(self, device_id: str) -> int:
        if len(self.cache) > 200_000:
            self.cache.clear()
        shard = self.cache[device_id] = zlib.crc32(device_id.encode()) % self.shards
        return shard

    def __call__(self, item: tuple[Readings, list[DeadLetter], float]) -> list[tuple[str, Readings]]:
        readings = item[0]
        n = len(readings)
        if not n:
            return []
        if self.shards == 1:
            return [("0", readings)]
        ids = readings.device_id.tolist()
        cache = self.cache
        try:
            shard = np.fromiter(map(cache.__getitem__, ids), dtype=np.int64, count=n)
        except KeyError:
            shard = np.fromiter((cache[d] if d in cache else self._shard(d) for d in ids), dtype=np.int64, count=n)
        order = np.argsort(shard, kind="stable")
        bounds = np.cumsum(np.bincount(shard, minlength=self.shards)).tolist()
        out = []
        lo = 0
        for key, hi in zip(self.keys, bounds, strict=True):
            if hi > lo:
                out.append((key, readings.take(order[lo:hi])))
            lo = hi
        return out


class _WindowLogic(StatefulLogic[Readings, Any, bytes]):
    def __init__(self, cfg: WindowConfig, state: bytes | None, clock: Clock, shard: str = "") -> None:
        self.cfg = cfg
        self.clock = clock
        self.win = ShardWindows.restore(cfg, state, clock())

    def on_item(self, value: Readings) -> tuple[list[Any], bool]:
        now = self.clock()
        accepted, late, dups, closed = self.win.add(value, now)
        out: list[Any] = []
        if len(accepted):
            out.append(accepted)
            metrics.EVENTS.labels(FLOW, "windows", "accepted").inc(len(accepted))
        if late:
            out.append(LateReadings([r for r, _ in late], value.received_at, [w for _, w in late]))
            metrics.EVENTS.labels(FLOW, "windows", "late").inc(len(late))
        if dups:
            metrics.EVENTS.labels(FLOW, "windows", "duplicate").inc(dups)
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

    def snapshot(self) -> bytes:
        return self.win.snapshot(self.clock())


class _DetectLogic(StatefulLogic[Readings, Anomalies, bytes]):
    def __init__(self, cfg: DetectorConfig, state: bytes | None) -> None:
        self.det = ShardDetectors.restore(cfg, state)

    def on_item(self, value: Readings) -> tuple[list[Anomalies], bool]:
        found = self.det.process(value)
        return ([Anomalies(found)] if found else []), StatefulLogic.RETAIN

    def snapshot(self) -> bytes:
        return self.det.snapshot()


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


def _utc(seconds: list[float]) -> pl.Series:
    return pl.Series([int(s * 1_000_000) for s in seconds], dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def readings_frame(readings: Readings | list[SensorReading]) -> pl.DataFrame:
    batch = readings if isinstance(readings, Readings) else Readings.from_rows(readings)
    return pl.DataFrame(
        {
            "device_id": pl.Series(batch.device_id.tolist(), dtype=pl.String),
            "ts": pl.Series(batch.ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            **{
                m: pl.Series(np.ascontiguousarray(batch.values[:, i]), dtype=pl.Float64, nan_to_null=True)
                for i, m in enumerate(MEASUREMENTS)
            },
        }
    )


def windows_frame(aggs: WindowAggs) -> pl.DataFrame:
    rows = aggs.rows
    data: dict[str, Any] = {
        "device_id": pl.Series([w.device_id for w in rows], dtype=pl.String),
        "window_start": _utc([w.window_start for w in rows]),
        "window_end": _utc([w.window_end for w in rows]),
        "count": pl.Series([w.count for w in rows], dtype=pl.Int64),
    }
    for i, m in enumerate(MEASUREMENTS):
        for j, s in enumerate(STAT_NAMES):
            dtype = pl.Int64 if s == "count" else pl.Float64
            data[f"{m}_{s}"] = pl.Series([w.stats[i][j] for w in rows], dtype=dtype)
    data["closed_at"] = _utc([w.closed_at for w in rows])
    return pl.DataFrame(data)


def anomalies_frame(found: list[Any], detected_at: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "device_id": pl.Series([a.device_id for a in found], dtype=pl.String),
            "ts": pl.Series([a.ts for a in found], dtype=pl.Datetime("us", "UTC")),
            "measurement": pl.Series([a.measurement for a in found], dtype=pl.String),
            "kind": pl.Series([a.kind for a in found], dtype=pl.String),
            "value": pl.Series([a.value for a in found], dtype=pl.Float64),
            "score": pl.Series([a.score for a in found], dtype=pl.Float64),
            "expected": pl.Series([a.expected for a in found], dtype=pl.Float64),
            "detector": pl.Series([a.detector for a in found], dtype=pl.String),
            "detected_at": _utc([detected_at] * len(found)),
        }
    )


def _rejects_frame(rows: list[DeadLetter], run_id: str) -> pl.DataFrame:
    # Imported here: `engine.ingest` loads pyarrow (~40 MB), which only the store's writes need.
    from engine.ingest.check import REJECT_COLUMNS

    return pl.DataFrame(
        {
            "source": pl.Series([d.source for d in rows], dtype=pl.String),
            "position": pl.Series([d.position for d in rows], dtype=pl.String),
            "raw": pl.Series([d.raw for d in rows], dtype=pl.String),
            "reason": pl.Series([d.reason for d in rows], dtype=pl.String),
            "message": pl.Series([d.message for d in rows], dtype=pl.String),
            "received_at": _utc([d.received_at for d in rows]),
            "run_id": pl.Series([run_id] * len(rows), dtype=pl.String),
            "schema": pl.Series([SENSOR_READING.name] * len(rows), dtype=pl.String),
        }
    ).select(REJECT_COLUMNS)


class _StorePartition(StatefulSinkPartition[Any, None]):
    """Writes synchronously, so by the time Bytewax snapshots (and the source may ack) it is stored."""

    def __init__(self, cfg: SinkConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = Store(cfg.db)
        if cfg.duckdb_memory_mb:
            self.store.con.execute(f"SET memory_limit = '{int(cfg.duckdb_memory_mb)}MB'")
        if cfg.duckdb_threads:
            self.store.con.execute(f"SET threads = {int(cfg.duckdb_threads)}")
        self.store.ensure(SENSOR_READING)
        self.store.upsert_windows(pl.DataFrame())
        self.store.upsert_anomalies(pl.DataFrame())

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
            stored = store.insert_new(SENSOR_READING, readings_frame(batch))
            now = self.clock()
            metrics.EVENTS.labels(FLOW, "store", "stored").inc(stored)
            if stored < len(batch):
                metrics.EVENTS.labels(FLOW, "store", "duplicate").inc(len(batch) - stored)
            observe = metrics.END_TO_END.labels(FLOW).observe
            for lag in (now - batch.seconds).tolist():
                observe(lag)
        if late:
            dead.extend(self._late(late))
        if dead:
            store.add_rejects(_rejects_frame(dead, self.cfg.run_id))
        for w in windows:
            store.upsert_windows(windows_frame(w))
            lag = metrics.WINDOW_CLOSE_LAG.labels(FLOW)
            for row in w.rows:
                lag.observe(max(row.closed_at - row.window_end, 0.0))
        if found:
            store.upsert_anomalies(anomalies_frame(found, self.clock()))
            for a in found:
                metrics.ANOMALIES.labels(FLOW, a.measurement, a.kind).inc()

    def _late(self, batches: list[LateReadings]) -> list[DeadLetter]:
        """Late readings that storage already holds were redeliveries (duplicates), not rejects."""
        rows = [r for b in batches for r in b.rows]
        frame = readings_frame(rows).with_row_index("i")
        self.store.con.register("_late", frame.select("i", "device_id", "ts").to_arrow())
        try:
            known = {
                i
                for (i,) in self.store.con.execute(
                    "SELECT b.i FROM _late b JOIN readings r ON r.device_id = b.device_id AND r.ts = b.ts"
                ).fetchall()
            }
        finally:
            self.store.con.unregister("_late")
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
            metrics.EVENTS.labels(FLOW, "store", "duplicate").inc(len(known))
        if out:
            metrics.EVENTS.labels(FLOW, "store", "late_rejected").inc(len(out))
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
) -> Dataflow:
    """The IoT dataflow. `source` defaults to MQTT per `cfg.mqtt`; `extra_sink` (tests, benchmarks) receives
    every item the store would."""
    if source is None:
        recovery = Path(cfg.recovery_dir) if cfg.recovery_dir else None
        source = MqttSource(cfg.mqtt, recovery, listener=_mqtt_listener, stop_after_idle_s=cfg.stop_after_idle_s)
    flow = Dataflow(FLOW)
    raw = op.input("mqtt", flow, source)
    decoded = op.map("decode", raw, _decode)
    dead = op.filter_map("rejects", decoded, lambda d: DeadLetters(d[1]) if d[1] else None)
    sharded = op.flat_map("shard", decoded, Sharder(cfg.windows.shards))
    windowed = op.stateful("windows", sharded, lambda s: _WindowLogic(cfg.windows, s, clock))
    accepted = op.filter_map("accepted", windowed, _accepted)
    found = op.stateful("detect", accepted, lambda s: _DetectLogic(cfg.detect, s))
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
