"""Load a training table: any file the ingest readers accept, or a DuckDB table or query.

    SRC = PATH                      CSV (, ; tab) / JSON / NDJSON / Parquet, gzip'd or not (detected by content)
        | duckdb:FILE:TABLE         a table (or view) in a DuckDB file, opened read-only
        | duckdb:FILE:SELECT …      any query

Files come through `engine.io.FileReader` (text columns for CSV/JSON, typed for Parquet); rows it cannot
parse are counted and skipped. The fingerprint is the sha256 of the loaded table written as CSV, so the
same content gives the same fingerprint whatever the source.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.errors import UnreadableFileError
from engine.io import FileReader
from models.training.errors import DataError, TrainUsageError

_QUERY = re.compile(r"^\s*(select|with|from|table|values)\b|\s", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LoadedTable:
    frame: pl.DataFrame
    source: str
    fingerprint: str
    skipped_rows: int = 0  # records the reader could not parse
    decimal_comma: bool = False  # a ';' CSV that writes decimals as '21,5'
    format: str = ""


def load_table(src: str) -> LoadedTable:
    """Read SRC into one frame; UsageError for a bad SRC, DataError for an empty table."""
    if src.startswith("duckdb:"):
        frame, fmt, skipped, comma = _duckdb(src), "duckdb", 0, False
    else:
        frame, fmt, skipped, comma = _file(Path(src))
    if frame.height == 0 or frame.width == 0:
        msg = f"{src} holds no rows: point --data at a table with data"
        raise DataError(msg)
    return LoadedTable(frame, src, fingerprint(frame), skipped, comma, fmt)


def fingerprint(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def _file(path: Path) -> tuple[pl.DataFrame, str, int, bool]:
    if not path.is_file():
        msg = f"--data {path}: no such file (give a CSV/JSON/NDJSON/Parquet file or duckdb:FILE:TABLE)"
        raise TrainUsageError(msg)
    try:
        reader = FileReader(path)
        parts, skipped = [], 0
        for batch in reader.batches():
            parts.append(batch.frame)
            skipped += len(batch.errors)
    except UnreadableFileError as exc:
        msg = f"cannot read {path}: {exc.message}"
        raise TrainUsageError(msg) from exc
    parts = [p for p in parts if p.width]
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    return frame, reader.detected.label, skipped, reader.decimal_comma


def _duckdb(src: str) -> pl.DataFrame:
    import duckdb

    body = src.removeprefix("duckdb:")
    file, sep, what = body.partition(":")
    if not sep or not file or not what.strip():
        msg = f"bad --data {src!r}: use duckdb:FILE:TABLE or duckdb:FILE:SELECT …"
        raise TrainUsageError(msg)
    if not Path(file).is_file():
        msg = f"--data {src!r}: no DuckDB file {file}"
        raise TrainUsageError(msg)
    sql = what if _QUERY.search(what) else 'SELECT * FROM "' + what.replace('"', '""') + '"'
    try:
        con = duckdb.connect(file, read_only=True)
    except duckdb.Error as exc:
        msg = f"cannot open {file} read-only: {exc} (a writer may hold it: stop it or export a Parquet file)"
        raise TrainUsageError(msg) from exc
    try:
        return con.sql(sql).pl()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        msg = f"--data {src!r}: {first}"
        raise TrainUsageError(msg) from exc
    finally:
        con.close()
