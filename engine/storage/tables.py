"""The DuckDB tables the store writes besides one per record schema: their DDL, in one place.

- `rejects`: the dead letter (source, position, raw, reason, message, received_at, run_id, schema).
- `ingest_runs`: one row per file per run with received/accepted/rejected/duplicates, unknown columns,
  format, sha256, duration, status. The view `ingest_run_totals` sums them per run.
- `readings_1m` (closed per-device windows: count, and count/mean/min/max/std per measurement) and
  `anomalies` (flagged readings): written by the IoT flow, replaced on their natural keys (`WINDOWS_KEY`,
  `ANOMALIES_KEY`). No PRIMARY KEY: `readings_1m` gains a row per device per minute (14 M a day at 10 000
  devices), and DuckDB must hold an ART index of that size in memory to checkpoint it (bench/iot_rss.py).
  Files written before this change keep their PRIMARY KEY; the writes work on both.
"""

from __future__ import annotations

SQL_TYPES = {"string": "VARCHAR", "choice": "VARCHAR", "float": "DOUBLE", "timestamp": "TIMESTAMPTZ"}

REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    source VARCHAR NOT NULL,       -- file path, topic, endpoint
    position VARCHAR,              -- 'line 17', 'record 3', 'row 9', 'offset 42'; NULL for a whole file
    raw VARCHAR,                   -- the record as received (text / JSON)
    reason VARCHAR NOT NULL,       -- a stable code, see engine.validation.rules.REASONS
    message VARCHAR NOT NULL,      -- what is wrong, in words
    received_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR,
    schema VARCHAR
)"""

RUNS_DDL = """
CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    sha256 VARCHAR,
    format VARCHAR,
    schema VARCHAR NOT NULL,
    status VARCHAR NOT NULL,       -- 'ok' | 'unreadable' | 'partial' (reading stopped mid-file)
    received BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    unknown_columns VARCHAR[],
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    duration_s DOUBLE
)"""

TOTALS_VIEW = """
CREATE VIEW IF NOT EXISTS ingest_run_totals AS
SELECT run_id, min(started_at) AS started_at, max(finished_at) AS finished_at, count(*) AS files,
       sum(received) AS received, sum(accepted) AS accepted, sum(rejected) AS rejected,
       sum(duplicates) AS duplicates
FROM ingest_runs GROUP BY run_id"""

_MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")
_WINDOW_STATS = ", ".join(
    f"{m}_count BIGINT, {m}_mean DOUBLE, {m}_min DOUBLE, {m}_max DOUBLE, {m}_std DOUBLE" for m in _MEASUREMENTS
)
WINDOWS_KEY = ("device_id", "window_start")
WINDOWS_DDL = f"""
CREATE TABLE IF NOT EXISTS readings_1m (
    device_id VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    count BIGINT NOT NULL,
    {_WINDOW_STATS},
    closed_at TIMESTAMPTZ
)"""

ANOMALIES_KEY = ("device_id", "ts", "measurement")
ANOMALIES_DDL = """
CREATE TABLE IF NOT EXISTS anomalies (
    device_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    measurement VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,           -- 'spike' | 'stuck'
    value DOUBLE,
    score DOUBLE,
    expected DOUBLE,
    detector VARCHAR,
    detected_at TIMESTAMPTZ
)"""
