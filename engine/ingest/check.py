"""One raw batch -> typed rows that passed + dead-letter rows, for one schema."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from engine.io.readers import RawBatch
from engine.schema.spec import Schema
from engine.validation.frame import validate_frame
from engine.validation.rules import clean_column_name

REJECT_COLUMNS = ("source", "position", "raw", "reason", "message", "received_at", "run_id", "schema")


@dataclass
class Checked:
    """What one batch became: `received == ok.height + rejects.height` (duplicates are decided at storage)."""

    source: str
    ok: pl.DataFrame
    rejects: pl.DataFrame
    received: int
    unknown_columns: list[str] = field(default_factory=list)


def map_columns(schema: Schema, columns: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """({field: [columns that can carry it, by priority]}, extra columns).

    Priority is the per-record validator's: the field's own (cleaned) name, then its aliases in declaration
    order, columns with the same cleaned name in file order; the first non-null value wins, row by row."""
    by_clean: dict[str, list[str]] = {}
    for col in columns:
        by_clean.setdefault(clean_column_name(col), []).append(col)
    fields: dict[str, list[str]] = {}
    used: set[str] = set()
    for name in schema.names:
        cols = [c for cand in schema.candidates(name) for c in by_clean.get(cand, [])]
        if cols:
            fields[name] = cols
            used.update(cols)
    return fields, [c for c in columns if c not in used]


def _field_columns(frame: pl.DataFrame, fields: dict[str, list[str]]) -> pl.DataFrame:
    exprs = []
    for name, cols in fields.items():
        if len(cols) == 1:
            exprs.append(pl.col(cols[0]).alias(name))
        else:
            same = len({frame.schema[c] for c in cols}) == 1
            parts = [pl.col(c) if same else pl.col(c).cast(pl.String) for c in cols]
            exprs.append(pl.coalesce(parts).alias(name))
    return frame.select(exprs)


def check_batch(
    schema: Schema,
    batch: RawBatch,
    *,
    source: str,
    run_id: str,
    received_at: dt.datetime,
    decimal_comma: bool = False,
) -> Checked:
    """Cleanse and validate one batch; rejected rows keep their position and original text."""
    fields, unknown = map_columns(schema, batch.frame.columns)
    frame = _field_columns(batch.frame, fields)
    result = validate_frame(schema, frame, decimal_comma=decimal_comma, height=batch.frame.height)
    idx = result.rejected.get_column("index")
    positions = batch.positions(idx) if len(idx) else []
    raws = batch.raw_text(idx) if len(idx) else []
    reasons = result.rejected.get_column("reason").to_list()
    messages = result.rejected.get_column("message").to_list()
    for err in batch.errors:
        positions.append(err.position)
        raws.append(err.raw)
        reasons.append(err.reason)
        messages.append(err.message)
    rejects = reject_frame(source, positions, raws, reasons, messages, received_at, run_id, schema.name)
    return Checked(source, result.ok, rejects, batch.received, unknown)


def reject_frame(
    source: str,
    positions: list[str | None],
    raws: list[str | None],
    reasons: list[str],
    messages: list[str],
    received_at: dt.datetime,
    run_id: str | None,
    schema: str | None,
) -> pl.DataFrame:
    """Dead-letter rows in the `rejects` table's shape."""
    n = len(reasons)
    return pl.DataFrame(
        {
            "source": pl.Series([source] * n, dtype=pl.String),
            "position": pl.Series(positions, dtype=pl.String),
            "raw": pl.Series(raws, dtype=pl.String),
            "reason": pl.Series(reasons, dtype=pl.String),
            "message": pl.Series(messages, dtype=pl.String),
            "received_at": pl.Series([received_at] * n, dtype=pl.Datetime("us", "UTC")),
            "run_id": pl.Series([run_id] * n, dtype=pl.String),
            "schema": pl.Series([schema] * n, dtype=pl.String),
        }
    )
