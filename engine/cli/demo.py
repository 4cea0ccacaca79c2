"""`tidegate demo`: the main job end to end on embedded defaults; ends by itself and says where to look."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole path on generated data and print where to look",
        description="Generate a messy, seeded set of sensor files, ingest them into a fresh "
        "DuckDB file, show the summary, some rows and some rejects, ingest again to show that nothing is "
        "stored twice, then train a churn model, export it to ONNX and register it.",
    )
    p.add_argument("--dir", type=Path, default=Path(".demo"), help="working folder (default .demo, wiped)")
    p.add_argument("--rows", type=int, default=2000, help="good records per file (default 2000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--iot-seconds", type=float, default=20.0, help="seconds of simulated device traffic (default 20)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import duckdb

    from engine.samples.messy_files import write_messy_corpus
    from flows.files import ingest_paths

    shutil.rmtree(args.dir, ignore_errors=True)
    files, db = args.dir / "incoming", args.dir / "tidegate.duckdb"
    corpus = write_messy_corpus(files, rows=args.rows, seed=args.seed)
    print(f"== 1. generated {len(corpus.files)} messy files ({corpus.received:,} records) in {files}/")
    print("== 2. tidegate ingest (format detected by content; bad records to the dead letter)")
    first = ingest_paths([files], db)
    print(first.table())
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    print("\n== 3. a few stored readings (table readings)")
    _show(
        con,
        "SELECT device_id, ts, temperature_c, humidity_pct, pressure_hpa, vibration_g "
        "FROM readings ORDER BY ts LIMIT 5",
    )
    print("\n== 4. the dead letter (table rejects): every rejected record, where it was and why")
    _show(
        con,
        "SELECT regexp_extract(source, '[^/]+$') AS file, position, reason, left(message, 70) AS message "
        "FROM rejects ORDER BY file, position LIMIT 12",
    )
    con.close()
    print("\n== 5. the same files again: nothing new is stored, every record counts as a duplicate")
    second = ingest_paths([files], db)
    print(
        f"received {second.received:,}  accepted {second.accepted}  rejected {second.rejected}  "
        f"duplicates {second.duplicates:,}"
    )

    print("\n== 6. batch training: churn model selection, CV, report, one-graph ONNX export, registry")
    from engine.registry import Registry
    from models.training.demo import demo_train

    registry = Registry(args.dir / "registry")
    trained = demo_train(args.dir / "training", registry, now=dt.datetime.now(dt.UTC), seed=args.seed)

    print("\n== 7. serving: predictions from the registry, interactions, real-time recommendations")
    from engine.cli.demo_serve import run_serve_demo

    run_serve_demo(args.dir / "serve", registry.root)

    print("\n== 8. real-time IoT: simulated devices -> MQTT -> Bytewax windows + anomaly detection -> DuckDB")
    from engine.cli.demo_iot import run_iot_demo

    run_iot_demo(args.dir / "iot", args.iot_seconds)
    print(
        f"\nDone. Look at: {db} (duckdb {db} -c 'FROM ingest_run_totals'), the files in {files}/, "
        f"the training report {trained.paths['html']}, the registry {registry.root}/, "
        f"the IoT database {args.dir / 'iot' / 'iot.duckdb'}"
    )
    return 0


def _show(con: Any, sql: str) -> None:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = [[str(v) for v in r] for r in cur.fetchall()]
    widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
