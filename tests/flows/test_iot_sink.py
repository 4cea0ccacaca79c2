"""The IoT flow's DuckDB sink: numpy columns in, exact values stored, no polars or pyarrow in the flow
process (issue 3: the flow's memory), and a store reopened now and then without losing a row."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
from bytewax.testing import run_main

from engine.connectors.memory import MemorySource, batched
from engine.connectors.messages import Anomaly, DeadLetter, Readings, WindowAgg, WindowAggs
from engine.schema import SENSOR_READING, SensorReading
from engine.sim import Fleet, FleetConfig
from engine.storage import Store
from flows.iot import (
    SinkConfig,
    _rejects_columns,
    _StorePartition,
    anomalies_columns,
    build_flow,
    load_config,
    readings_columns,
    windows_columns,
)

T0 = 1_714_557_600.0
UTC = dt.UTC


def _msgs(devices: int = 12, seconds: int = 300) -> list[tuple[str, bytes]]:
    fleet = Fleet(FleetConfig(devices=devices, rate_hz=1, seed=3, anomaly_rate=0.01, bad_rate=0.03))
    return [(m.topic, m.payload) for m in fleet.run(T0, seconds)]


def _counts(db: Path) -> list[int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("readings", "rejects", "anomalies")]


def test_issue3_the_flow_process_loads_neither_polars_nor_pyarrow(tmp_path: Path) -> None:
    code = f"""
import sys
from bytewax.testing import run_main
from engine.connectors.memory import MemorySource, batched
from engine.sim import Fleet, FleetConfig
from flows.iot import build_flow, load_config
fleet = Fleet(FleetConfig(devices=5, rate_hz=1, seed=1, bad_rate=0.05))
msgs = [(m.topic, m.payload) for m in fleet.run({T0}, 120)]
cfg = load_config(None, windows={{"length_s": 30}}, sink={{"db": {str(tmp_path / "t.db")!r}}})
run_main(build_flow(cfg, source=MemorySource(batched(msgs, 100)), alerts=False))
print(sorted(m for m in ("polars", "pyarrow", "pandas") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert _counts(tmp_path / "t.db")[0] > 0


def test_a_store_reopened_every_few_rows_keeps_every_row(tmp_path: Path) -> None:
    msgs = _msgs()
    counts = []
    for name, reopen in (("once.db", None), ("often.db", 300)):
        sink = {"db": str(tmp_path / name), "reopen_after_rows": reopen}
        cfg = load_config(None, windows={"length_s": 60}, sink=sink)
        run_main(build_flow(cfg, source=MemorySource(batched(msgs, 250)), alerts=False))
        counts.append(_counts(tmp_path / name))
    assert counts[0] == counts[1] and counts[0][0] > 0


def test_the_sink_reopens_its_store_after_the_configured_rows(tmp_path: Path) -> None:
    at = dt.datetime.fromtimestamp(T0, UTC)
    rows = [SensorReading(device_id=f"d{i}", ts=at, temperature_c=1.0) for i in range(4)]
    part = _StorePartition(SinkConfig(db=str(tmp_path / "t.db"), reopen_after_rows=3), lambda: T0)
    first = part.store
    part.write_batch([Readings.from_rows(rows[:2])])
    assert part.store is first
    part.write_batch([Readings.from_rows(rows[2:])])
    assert part.store is not first and part.written == 0
    assert part.store.query("SELECT count(*) FROM readings") == [(4,)]
    part.close()


def test_the_columns_store_exact_values(tmp_path: Path) -> None:
    ts = dt.datetime(2024, 5, 1, 10, 0, 0, 123_456, tzinfo=UTC)
    window = WindowAgg("d1", T0, T0 + 60, 2, ((2, 1.5, 1.0, 2.0, 0.7), (0, None, None, None, None)) * 2, T0 + 61.25)
    found = [Anomaly(device_id="d1", ts=ts, measurement="temperature_c", kind="spike", value=9.0, score=5.0,
                     expected=None, detector="ewz")]  # fmt: skip
    dead = [DeadLetter("sensors/d1", "sensors/d1#ab", "{", "bad_json", "not JSON", T0 + 0.5)]
    reading = SensorReading(device_id="d1", ts=ts, temperature_c=20.5, vibration_g=None)
    with Store(tmp_path / "t.db") as store:
        assert store.insert_new(SENSOR_READING, readings_columns([reading])) == 1
        store.upsert_windows(windows_columns(WindowAggs([window])))
        store.upsert_anomalies(anomalies_columns(found, T0 + 1))
        store.add_rejects(_rejects_columns(dead, "iot"))
        got = store.query("SELECT ts, temperature_c, vibration_g FROM readings")
        w = store.query(
            "SELECT count, temperature_c_std, humidity_pct_count, humidity_pct_mean, closed_at FROM readings_1m"
        )
        a = store.query("SELECT ts, expected, detected_at FROM anomalies")
        r = store.query("SELECT position, received_at, run_id, schema FROM rejects")
    assert got == [(ts, 20.5, None)]
    assert w == [(2, 0.7, 0, None, dt.datetime.fromtimestamp(T0 + 61.25, UTC))]
    assert a == [(ts, None, dt.datetime.fromtimestamp(T0 + 1, UTC))]
    assert r == [("sensors/d1#ab", dt.datetime.fromtimestamp(T0 + 0.5, UTC), "iot", "sensor_reading")]


def test_sink_settings() -> None:
    assert SinkConfig().duckdb_settings() == {"memory_limit": "32MB", "threads": 1}
    assert SinkConfig(duckdb_memory_mb=None, duckdb_threads=None).duckdb_settings() == {}
    assert readings_columns([])["ts"].dtype == np.dtype("datetime64[us]")


def test_closed_windows_as_columns_read_and_store_as_their_rows() -> None:
    """Issue 3 (memory): the windows step hands closed windows over as columns (`ClosedWindows`); read as
    rows they are the `WindowAgg`s, and the sink stores the same columns from either form."""
    import pickle

    from engine.connectors.messages import ClosedWindows
    from engine.connectors.windows import ShardWindows, WindowConfig

    rng = np.random.default_rng(7)
    w = ShardWindows(WindowConfig(length_s=60, allowed_lateness_s=5))
    rows = []
    for i in range(40):  # with absent measurements: n == 0 and n == 1 (no std) among the windows
        for k in range(1 + i % 3):
            values = [None if rng.random() < 0.3 else round(float(rng.normal(20, 2)), 2) for _ in range(4)]
            if all(v is None for v in values):
                values[0] = 20.0
            rows.append(
                SensorReading(
                    device_id=f"d{i}",
                    ts=dt.datetime.fromtimestamp(T0 + k + i / 100, UTC),
                    temperature_c=values[0],
                    humidity_pct=values[1],
                    pressure_hpa=None if values[2] is None else values[2] + 1000,
                    vibration_g=None if values[3] is None else abs(values[3]) / 10,
                )
            )
    w.add(rows, now=1000.0)
    closed = w.close_all(now=1001.0)
    assert isinstance(closed, ClosedWindows) and len(closed) == 40
    as_rows = list(closed)
    assert closed == as_rows and closed[3] == as_rows[3] and closed[-1] == as_rows[-1]
    assert list(closed[5:9]) == as_rows[5:9] and pickle.loads(pickle.dumps(closed)) == as_rows
    assert {s[0] for w_ in as_rows for s in w_.stats} >= {0, 1, 2}
    assert ClosedWindows.concat([closed[:10], ClosedWindows.empty(), closed[10:]]) == as_rows
    columnar, listed = windows_columns(WindowAggs(closed)), windows_columns(WindowAggs(as_rows))
    assert list(columnar) == list(listed)
    for name, col in columnar.items():
        assert col.dtype == listed[name].dtype, name
        assert np.array_equal(col, listed[name], equal_nan=col.dtype.kind == "f"), name
