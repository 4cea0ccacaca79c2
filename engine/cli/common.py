"""Options and helpers shared by several commands."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from engine.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, help="DuckDB file (default: $TIDEGATE_DB, else ./tidegate.duckdb)"
    )


def add_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", default="sensor_reading", help="record schema (see 'tidegate schemas')")


def db_path(value: Path | None) -> Path:
    from engine.storage.duckdb_store import default_db_path

    return value if value is not None else default_db_path()


def parse_duration(text: str) -> float:
    """'10m' -> 600.0; '30s', '1.5h', '1d', '250ms'; a bare number is seconds."""
    m = _DURATION.match(text)
    if not m:
        msg = f"bad duration {text!r}: use a number with s, m, h or d, e.g. 10m"
        raise UsageError(msg)
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


def progress_printer(enabled: bool):  # type: ignore[no-untyped-def]
    """A callback that keeps one progress line on stderr (only when stderr is a terminal)."""
    if not enabled or not sys.stderr.isatty():
        return None

    def show(stats) -> None:  # type: ignore[no-untyped-def]
        name = Path(stats.source).name
        print(f"\r  {name[:40]:40s} {stats.received:>12,} records", end="", file=sys.stderr, flush=True)

    return show
