"""The DuckDB store: one file, one writing process, idempotent writes.

- One table per record schema (`readings`, `interactions`), columns from the schema, natural key =
  schema.key. A row whose key is already stored (earlier in the batch, the run, or any earlier run) is a
  duplicate: not stored again, counted. Keys are compared on typed values, so the same instant written in
  two notations is the same key. Dedup is an anti-join (not a PRIMARY KEY): an ART index halves load speed
  (shared/design/ENVIRONMENT.md), and DuckDB has one writer, so the anti-join cannot race.
- `readings_1m` and `anomalies` (the IoT flow's) are replaced on their natural keys: a delete of the keys
  already stored, then an insert, in one transaction. The dead letter and the run log: see
  `engine.storage.tables`.
- Both skip the key lookup when nothing is stored in the batch's time range (the usual case for new
  data): DuckDB answers that from zone maps, without scanning.

Batches come as a polars frame (batch ingestion: handed to DuckDB through Arrow, deduplicated by polars) or
as `Columns`, numpy arrays by name (the IoT flow: scanned in place and written in bounded slices; see
`engine.storage.columns`). The same SQL writes both.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from engine.errors import StorageError
from engine.schema.spec import Schema
from engine.storage.columns import Columns, distinct_keys, height, instant, slices
from engine.storage.tables import (
    ANOMALIES_DDL,
    ANOMALIES_KEY,
    REJECTS_DDL,
    RUNS_DDL,
    SQL_TYPES,
    TOTALS_VIEW,
    WINDOWS_DDL,
    WINDOWS_KEY,
)

if TYPE_CHECKING:
    import polars as pl


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

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        settings: Mapping[str, str | int | bool] | None = None,
        wait_s: float = 0.0,
    ) -> None:
        """`settings`: DuckDB settings for this connection (`memory_limit`, `threads`, ...), applied with SET.
        `wait_s`: while another process holds the file (DuckDB: one writer, or readers), retry this long."""
        self.path = Path(path)
        for name in settings or {}:
            if not name.isidentifier():
                msg = f"not a DuckDB setting name: {name!r}"
                raise StorageError(msg)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self.con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except (duckdb.Error, OSError) as exc:
                locked = "lock" in str(exc).lower()
                if locked and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                msg = f"cannot open the database {self.path}: {exc}"
                if locked:
                    msg += " (another process is writing to it: DuckDB allows one writer)"
                raise StorageError(msg) from exc
        self.con.execute("SET TimeZone = 'UTC'")
        for name, value in (settings or {}).items():
            try:
                self.con.execute(f"SET {name} = ?", [value])
            except duckdb.Error as exc:
                self.con.close()
                msg = f"cannot apply the DuckDB setting {name} = {value!r}: {exc}"
                raise StorageError(msg) from exc
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
        cols = ", ".join(f"{f.name} {SQL_TYPES[f.kind]}{' NOT NULL' if f.required else ''}" for f in schema.fields)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {schema.table} ({cols})")
        self.con.execute(REJECTS_DDL)
        self.con.execute(RUNS_DDL)
        self.con.execute(TOTALS_VIEW)
        self._ready.add(schema.name)

    # -- writes -----------------------------------------------------------------------------------------
    def insert_new(self, schema: Schema, rows: pl.DataFrame | Columns) -> int:
        """Insert the rows whose key is not stored yet (first occurrence wins); return how many were new."""
        if _height(rows) == 0:
            return 0
        self.ensure(schema)
        key = list(schema.key)
        match = " AND ".join(f"t.{k} = b.{k}" for k in key)
        cols = ", ".join(schema.names)
        new = 0
        for part in _parts(rows):
            guard = f"WHERE NOT EXISTS (SELECT 1 FROM {schema.table} t WHERE {match})"
            if self._none_in_range(schema.table, _time_key(schema), part):
                guard = ""
            with self._scan(part, key, keep="first", columns=schema.names) as batch:
                result = self.con.execute(
                    f"INSERT INTO {schema.table} ({cols}) SELECT {cols} FROM {batch} b {guard}"
                ).fetchall()
            new += int(result[0][0]) if result else 0
        return new

    def _none_in_range(self, table: str, column: str | None, rows: pl.DataFrame | Columns) -> bool:
        """True when no stored row lies in the range of `rows`' `column` (a timestamp of the key), so none
        can share a key with them. DuckDB answers from zone maps, without scanning."""
        if column is None:
            return False
        if isinstance(rows, Mapping):
            col = rows[column]
            lo, hi = instant(col.min()), instant(col.max())
        else:
            series = rows.get_column(column)
            lo, hi = series.min(), series.max()
        found = self.con.execute(f"SELECT 1 FROM {table} WHERE {column} BETWEEN ? AND ? LIMIT 1", [lo, hi]).fetchall()
        return not found

    def add_rejects(self, rejects: pl.DataFrame | Columns) -> None:
        """Append dead-letter rows (columns as in the `rejects` table; missing ones are NULL)."""
        if _height(rejects) == 0:
            return
        self.con.execute(REJECTS_DDL)
        names = _names(rejects)
        cols = ", ".join(names)
        # Idempotent per (run, source, position): a batch replayed after a crash is not dead-lettered twice.
        # A file-level reject (position NULL) is one per file per run.
        replayable = {"run_id", "source", "position"} <= set(names)
        where = (
            " WHERE NOT EXISTS (SELECT 1 FROM rejects t WHERE t.run_id = r.run_id "
            "AND t.source = r.source AND t.position IS NOT DISTINCT FROM r.position)"
            if replayable
            else ""
        )
        for part in _parts(rejects):
            with self._scan(part) as batch:
                self.con.execute(f"INSERT INTO rejects ({cols}) SELECT {cols} FROM {batch} r{where}")

    def upsert_windows(self, rows: pl.DataFrame | Columns) -> int:
        """Store closed windows (columns as in `readings_1m`); a window stored again replaces itself."""
        return self._replace("readings_1m", WINDOWS_DDL, rows, WINDOWS_KEY, "window_start")

    def upsert_anomalies(self, rows: pl.DataFrame | Columns) -> int:
        """Store flagged readings (columns as in `anomalies`); idempotent on (device_id, ts, measurement)."""
        return self._replace("anomalies", ANOMALIES_DDL, rows, ANOMALIES_KEY, "ts")

    def _replace(self, table: str, ddl: str, rows: pl.DataFrame | Columns, key: Sequence[str], time_key: str) -> int:
        """Create `table` if needed (also for an empty batch), then store the rows, replacing the stored
        ones with the same key (of several in the batch, the last wins); return how many were written."""
        self.con.execute(ddl)
        cols = ", ".join(_names(rows))
        match = " AND ".join(f"t.{k} = b.{k}" for k in key)
        written = 0
        for part in _parts(rows):
            stored = not self._none_in_range(table, time_key, part)
            with self._scan(part, list(key), keep="last") as batch:
                self.con.execute("BEGIN")
                try:
                    if stored:
                        self.con.execute(f"DELETE FROM {table} t USING {batch} b WHERE {match}")
                    result = self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {batch}").fetchall()
                    self.con.execute("COMMIT")
                except duckdb.Error:
                    self.con.execute("ROLLBACK")
                    raise
            written += int(result[0][0]) if result else 0
        return written

    @contextmanager
    def _scan(
        self,
        rows: pl.DataFrame | Columns,
        key: list[str] | None = None,
        keep: str = "first",
        columns: list[str] | None = None,
    ) -> Iterator[str]:
        """Register `rows` for one statement and yield what to select from: with `key`, one row per key
        (its `keep` = "first" or "last" occurrence). Columns are scanned in place (deduplicated in SQL, and
        only when their keys are not already distinct); a polars frame goes through Arrow, deduplicated by
        polars (faster than SQL on a large file batch)."""
        name = "_batch"
        source = name
        if isinstance(rows, Mapping):
            data: Any = rows
            if key and not distinct_keys(rows, key):
                data = {**rows, "_i": np.arange(height(rows))}
                order = "_i" if keep == "first" else "_i DESC"
                source = (
                    f"(SELECT * EXCLUDE (_i) FROM {name} "
                    f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY {order}) = 1)"
                )
        else:
            import polars as pl  # the caller holds a polars frame: already loaded

            if key:
                if keep == "first":
                    rows = rows.filter(pl.struct(key).is_first_distinct())
                else:
                    rows = rows.unique(subset=key, keep="last", maintain_order=True)
            if columns is not None:
                rows = rows.select(columns)
            data = rows.to_arrow(compat_level=pl.CompatLevel.oldest())
        self.con.register(name, data)
        try:
            yield source
        finally:
            self.con.unregister(name)

    def record_file(self, stats: FileStats) -> None:
        """Upsert the file's row for this run (a resumed run replaces what a crashed attempt wrote)."""
        self.con.execute(RUNS_DDL)
        self.con.execute(TOTALS_VIEW)
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

    def stored_positions(self, schema: Schema, rows: Columns) -> set[int]:
        """The positions in `rows` whose key is already stored in the schema's table."""
        if height(rows) == 0:
            return set()
        self.ensure(schema)
        match = " AND ".join(f"t.{k} = b.{k}" for k in schema.key)
        found: set[int] = set()
        offset = 0
        for part in slices(rows):
            self.con.register("_batch", {**{k: part[k] for k in schema.key}, "_i": np.arange(height(part))})
            try:
                hits = self.con.execute(
                    f"SELECT b._i FROM _batch b WHERE EXISTS (SELECT 1 FROM {schema.table} t WHERE {match})"
                ).fetchall()
            finally:
                self.con.unregister("_batch")
            found.update(offset + int(i) for (i,) in hits)
            offset += height(part)
        return found

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def _has_table(self, name: str) -> bool:
        # fetchall, not fetchone: DuckDB 2 refuses new work on a connection while a result is unfinished
        found = self.con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()
        return bool(found)


def _height(rows: pl.DataFrame | Columns) -> int:
    return height(rows) if isinstance(rows, Mapping) else rows.height


def _time_key(schema: Schema) -> str | None:
    return next((k for k in schema.key if schema.spec(k).kind == "timestamp"), None)


def _names(rows: pl.DataFrame | Columns) -> list[str]:
    return list(rows) if isinstance(rows, Mapping) else rows.columns


def _parts(rows: pl.DataFrame | Columns) -> Iterator[pl.DataFrame | Columns]:
    """What one statement writes: Columns in bounded slices, a polars frame whole (one Arrow hand-off)."""
    if _height(rows) == 0:
        return
    if isinstance(rows, Mapping):
        yield from slices(rows)
    else:
        yield rows
