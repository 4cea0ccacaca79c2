"""`tidegate ingest PATH... --db FILE`: run the files flow once and print what happened to each file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from engine.cli.common import add_db, add_schema, db_path, progress_printer


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ingest",
        help="ingest files or folders (CSV, JSON, NDJSON, Parquet, gzip'd; detected by content)",
        description="Detect, read, cleanse and validate files; store accepted records in DuckDB, rejected "
        "ones in the dead letter (table rejects), and per-file counts in ingest_runs.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files and/or folders")
    add_db(p)
    add_schema(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--batch-rows", type=int, default=100_000, help="records per batch (default 100000)")
    p.add_argument(
        "--recovery-dir",
        type=Path,
        metavar="DIR",
        help="snapshot progress here; after a crash, the same command resumes the same run",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from flows.files import ingest_paths

    report = ingest_paths(
        args.paths,
        db_path(args.db),
        args.schema,
        batch_rows=args.batch_rows,
        on_progress=progress_printer(not args.json),
        recovery_dir=args.recovery_dir,
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        print(report.table())
    return 0
