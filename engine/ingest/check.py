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


def map_columns(schema: Schema, columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """({original name: field name}, extra columns). The exact field name wins over an alias; a later
    column that maps to an already-taken field is an extra column, reported as 'name (duplicate of field)'."""
    chosen: dict[str, str] = {}
    by_field: dict[str, str] = {}
    unknown: list[str] = []
    cleaned = {c: clean_column_name(c) for c in columns}
    # Exact names first, then aliases in column order.
    for exact in (True, False):
        for col in columns:
            if col in chosen:
                continue
            name = cleaned[col]
            target = name if exact and name in schema.names else (schema.canonical(name) if not exact else None)
            if target is None:
                continue
            if target in by_field:
                continue
            chosen[col] = target
            by_field[target] = col
    for col in columns:
        if col in chosen:
            continue
        target = schema.canonical(cleaned[col])
        unknown.append(f"{col} (duplicate of {target})" if target else col)
    return chosen, unknown


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
    rename, unknown = map_columns(schema, batch.frame.columns)
    frame = batch.frame.select([pl.col(orig).alias(name) for orig, name in rename.items()])
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
