"""The DuckDB store: one file, one writing process, idempotent inserts.

Tables
- one per record schema (`readings`, `interactions`), columns from the schema, natural key = schema.key.
  A row whose key is already stored (earlier in the batch, the run, or any earlier run) is a duplicate:
  not stored again, counted. Keys are compared on typed values, so the same instant written in two
  notations is the same key. Dedup is an anti-join (not a PRIMARY KEY): an ART index halves load speed
  (shared/design/ENVIRONMENT.md), and DuckDB has one writer, so the anti-join cannot race.
- `rejects`: the dead letter (source, position, raw, reason, message, received_at, run_id, schema).
- `ingest_runs`: one row per file per run with received/accepted/rejected/duplicates, unknown columns,
  format, sha256, duration, status. The view `ingest_run_totals` sums them per run.
- `readings_1m` (closed per-device windows: count, and count/mean/min/max/std per measurement) and
  `anomalies` (flagged readings): written by the IoT flow as upserts on their natural keys
  ((device_id, window_start) and (device_id, ts, measurement)); small tables, so a PRIMARY KEY is fine.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from engine.errors import StorageError
from engine.schema.spec import Schema

_SQL_TYPES = {"string": "VARCHAR", "choice": "VARCHAR", "float": "DOUBLE", "timestamp": "TIMESTAMPTZ"}

_REJECTS_DDL = """
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

_RUNS_DDL = """
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

_TOTALS_VIEW = """
CREATE VIEW IF NOT EXISTS ingest_run_totals AS
SELECT run_id, min(started_at) AS started_at, max(finished_at) AS finished_at, count(*) AS files,
       sum(received) AS received, sum(accepted) AS accepted, sum(rejected) AS rejected,
       sum(duplicates) AS duplicates
FROM ingest_runs GROUP BY run_id"""


_MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")
_WINDOW_STATS = ", ".join(
    f"{m}_count BIGINT, {m}_mean DOUBLE, {m}_min DOUBLE, {m}_max DOUBLE, {m}_std DOUBLE" for m in _MEASUREMENTS
)
_WINDOWS_DDL = f"""
CREATE TABLE IF NOT EXISTS readings_1m (
    device_id VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    count BIGINT NOT NULL,
    {_WINDOW_STATS},
    closed_at TIMESTAMPTZ,
    PRIMARY KEY (device_id, window_start)
)"""

_ANOMALIES_DDL = """
CREATE TABLE IF NOT EXISTS anomalies (
    device_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    measurement VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,           -- 'spike' | 'stuck'
    value DOUBLE,
    score DOUBLE,
    expected DOUBLE,
    detector VARCHAR,
    detected_at TIMESTAMPTZ,
    PRIMARY KEY (device_id, ts, measurement)
)"""


def default_db_path() -> Path:
    """`$TIDEGATE_DB`, else ./tidegate.duckdb (ARCHITECTURE.md conventions)."""
    return Path(os.environ.get("TIDEGATE_DB", "tidegate.duckdb"))


@dataclass
class FileStats:
    """The counts for one file in one run; `received == accepted + rejected + duplicates` always."""

    source: str
    schema: str
    run_id: str
    sha256: str | None = None
    format: str | None = None
    status: str = "ok"
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def balanced(self) -> bool:
        return self.received == self.accepted + self.rejected + self.duplicates

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Store:
    """A DuckDB file opened by its one writer (or read-only)."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except (duckdb.Error, OSError) as exc:
            msg = f"cannot open the database {self.path}: {exc}"
            if "lock" in str(exc).lower():
                msg += " (another process is writing to it: DuckDB allows one writer)"
            raise StorageError(msg) from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self._ready: set[str] = set()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------------------
    def ensure(self, schema: Schema) -> None:
        """Create the schema's table, the dead letter and the run log if they do not exist."""
        if schema.name in self._ready:
            return
        cols = ", ".join(f"{f.name} {_SQL_TYPES[f.kind]}{' NOT NULL' if f.required else ''}" for f in schema.fields)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {schema.table} ({cols})")
        self.con.execute(_REJECTS_DDL)
        self.con.execute(_RUNS_DDL)
        self.con.execute(_TOTALS_VIEW)
        self._ready.add(schema.name)

    # -- writes -----------------------------------------------------------------------------------------
    def insert_new(self, schema: Schema, rows: pl.DataFrame) -> int:
        """Insert the rows whose key is not stored yet (first occurrence wins); return how many were new."""
        if rows.height == 0:
            return 0
        self.ensure(schema)
        key = list(schema.key)
        rows = rows.filter(pl.struct(key).is_first_distinct())
        match = " AND ".join(f"t.{k} = b.{k}" for k in key)
        cols = ", ".join(schema.names)
        guard = f"WHERE NOT EXISTS (SELECT 1 FROM {schema.table} t WHERE {match})"
        if self._disjoint(schema, rows):
            guard = ""  # nothing stored in this batch's time range (the usual case for new data): no anti-join
        self.con.register("_batch", rows.select(schema.names).to_arrow(compat_level=pl.CompatLevel.oldest()))
        try:
            result = self.con.execute(
                f"INSERT INTO {schema.table} ({cols}) SELECT {cols} FROM _batch b {guard}"
            ).fetchall()
        finally:
            self.con.unregister("_batch")
        return int(result[0][0]) if result else 0

    def _disjoint(self, schema: Schema, rows: pl.DataFrame) -> bool:
        """True when no stored row can share a key with `rows`: none lies in the batch's range of its
        timestamp key (DuckDB answers from zone maps, without scanning)."""
        ts_keys = [k for k in schema.key if schema.spec(k).kind == "timestamp"]
        if not ts_keys:
            return False
        col = rows.get_column(ts_keys[0])
        lo, hi = col.min(), col.max()
        found = self.con.execute(
            f"SELECT 1 FROM {schema.table} WHERE {ts_keys[0]} BETWEEN ? AND ? LIMIT 1", [lo, hi]
        ).fetchall()
        return not found

    def add_rejects(self, rejects: pl.DataFrame) -> None:
        """Append dead-letter rows (columns as in the `rejects` table; missing ones are NULL)."""
        if rejects.height == 0:
            return
        self.con.execute(_REJECTS_DDL)
        cols = ", ".join(rejects.columns)
        # Idempotent per (run, source, position): a batch replayed after a crash is not dead-lettered twice.
        # A file-level reject (position NULL) is one per file per run.
        replayable = {"run_id", "source", "position"} <= set(rejects.columns)
        where = (
            " WHERE NOT EXISTS (SELECT 1 FROM rejects t WHERE t.run_id = r.run_id "
            "AND t.source = r.source AND t.position IS NOT DISTINCT FROM r.position)"
            if replayable
            else ""
        )
        self.con.register("_rejects", rejects.to_arrow(compat_level=pl.CompatLevel.oldest()))
        try:
            self.con.execute(f"INSERT INTO rejects ({cols}) SELECT {cols} FROM _rejects r{where}")
        finally:
            self.con.unregister("_rejects")

    def upsert_windows(self, rows: pl.DataFrame) -> int:
        """Store closed windows (columns as in `readings_1m`); a window stored again replaces itself."""
        return self._upsert("readings_1m", _WINDOWS_DDL, rows, ["device_id", "window_start"])

    def upsert_anomalies(self, rows: pl.DataFrame) -> int:
        """Store flagged readings (columns as in `anomalies`); idempotent on (device_id, ts, measurement)."""
        return self._upsert("anomalies", _ANOMALIES_DDL, rows, ["device_id", "ts", "measurement"])

    def _upsert(self, table: str, ddl: str, rows: pl.DataFrame, key: list[str]) -> int:
        self.con.execute(ddl)
        if rows.height == 0:
            return 0
        rows = rows.unique(subset=key, keep="last", maintain_order=True)
        cols = ", ".join(rows.columns)
        self.con.register("_upsert", rows.to_arrow(compat_level=pl.CompatLevel.oldest()))
        try:
            self.con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) SELECT {cols} FROM _upsert")
        finally:
            self.con.unregister("_upsert")
        return rows.height

    def record_file(self, stats: FileStats) -> None:
        """Upsert the file's row for this run (a resumed run replaces what a crashed attempt wrote)."""
        self.con.execute(_RUNS_DDL)
        self.con.execute(_TOTALS_VIEW)
        self.con.execute("BEGIN")
        self.con.execute("DELETE FROM ingest_runs WHERE run_id = ? AND source = ?", [stats.run_id, stats.source])
        self.con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                stats.run_id,
                stats.source,
                stats.sha256,
                stats.format,
                stats.schema,
                stats.status,
                stats.received,
                stats.accepted,
                stats.rejected,
                stats.duplicates,
                stats.unknown_columns,
                stats.started_at,
                stats.finished_at,
                stats.duration_s,
            ],
        )
        self.con.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------------------------
    def run_files(self, run_id: str) -> list[FileStats]:
        if not self._has_table("ingest_runs"):
            return []
        rows = self.con.execute(
            "SELECT source, schema, run_id, sha256, format, status, received, accepted, rejected, "
            "duplicates, unknown_columns, started_at, finished_at "
            "FROM ingest_runs WHERE run_id = ? ORDER BY source",
            [run_id],
        ).fetchall()
        return [
            FileStats(*r[:10], unknown_columns=list(r[10] or []), started_at=r[11], finished_at=r[12]) for r in rows
        ]

    def ingested_hashes(self, schema: Schema) -> set[str]:
        """Content hashes of files already ingested into this schema. Unreadable files count (the same bytes
        would fail the same way); files whose reading stopped mid-way ('partial') do not."""
        if not self._has_table("ingest_runs"):
            return set()
        rows = self.con.execute(
            "SELECT DISTINCT sha256 FROM ingest_runs WHERE schema = ? AND status <> 'partial' AND sha256 IS NOT NULL",
            [schema.name],
        ).fetchall()
        return {r[0] for r in rows}

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def _has_table(self, name: str) -> bool:
        row = self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
        return bool(row and row[0])
