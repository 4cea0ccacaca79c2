"""`tidegate watch DIR --db FILE [--every 10m | --once]`: ingest new or changed files, never twice."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from engine.cli.common import add_db, add_schema, db_path, parse_duration
from engine.errors import StorageError, UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "watch",
        help="ingest each new or changed file in a folder (on arrival, on a schedule, or once)",
        description="Ingest files as they arrive in DIR (default), every interval (--every), or once "
        "(--once, for cron). A file is ingested once per content (sha256), whatever its name.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    add_db(p)
    add_schema(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--every", metavar="DURATION", help="scan on a schedule, e.g. 30s, 10m, 1h")
    mode.add_argument("--once", action="store_true", help="scan once and exit (for cron)")
    p.add_argument(
        "--settle",
        default="1s",
        metavar="DURATION",
        help="ignore files modified more recently than this (still being written); default 1s",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per run instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import msgspec

    from engine.ingest.watch import Pending
    from engine.schema import get_schema
    from engine.storage import Store
    from flows.files import ingest_paths

    if not args.dir.is_dir():
        msg = f"not a folder: {args.dir}"
        raise UsageError(msg)
    schema = get_schema(args.schema)
    db = db_path(args.db)
    every = parse_duration(args.every) if args.every else None
    pending = Pending(args.dir, settle_s=parse_duration(args.settle))

    # SIGTERM (a service manager stopping the watcher) lets the run in progress finish, so its files' report is
    # printed, then the watcher exits 0.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def once() -> int:
        with Store(db) as store:
            store.ensure(schema)
            done = store.ingested_hashes(schema)
        files = pending.scan(done)
        if not files:
            return 0
        report = ingest_paths(files, db, schema.name)
        out = msgspec.json.encode(report).decode() if args.json else report.table()
        print(out, flush=True)
        return len(files)

    def patiently() -> None:
        """A long-running watcher outlives a reader holding the database: it says so and tries again."""
        try:
            once()
        except StorageError as exc:
            print(f"tidegate watch: {exc}; will retry", file=sys.stderr, flush=True)

    if args.once:
        once()
        return 0
    if every is not None:
        print(f"watching {args.dir} every {args.every} -> {db} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while not stop.is_set():
            patiently()
            stop.wait(every)
        return 0
    from watchfiles import watch

    print(f"watching {args.dir} for new files -> {db} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    patiently()
    # Re-scan on every change notice, and a little later too, so files that were still settling (or that met a
    # locked database) get picked.
    for _ in watch(
        args.dir,
        debounce=200,
        step=100,
        rust_timeout=int(max(pending.settle_s, 0.5) * 2000),
        yield_on_timeout=True,
        stop_event=stop,
    ):
        if stop.is_set():
            break
        patiently()
    return 0
