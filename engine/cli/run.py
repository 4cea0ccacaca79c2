"""`tidegate run iot`: run the IoT flow (MQTT -> windows -> anomalies -> DuckDB) in this process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli.common import add_db, db_path, parse_duration


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a streaming flow (iot)",
        description="Run a streaming flow until interrupted (or idle, with --stop-after-idle).",
    )
    p.add_argument("flow", choices=["iot"], help="which flow")
    p.add_argument("--mqtt", default=None, help="broker URL (default from the config, else mqtt://127.0.0.1:1883)")
    add_db(p)
    p.add_argument("--recovery-dir", type=Path, default=None, help="enable Bytewax recovery (created if missing)")
    p.add_argument("--config", type=Path, default=None, help="flow config (TOML): windows, detectors, batches")
    p.add_argument("--epoch", default=None, help="snapshot interval, e.g. 1s (default from config: 1s)")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    p.add_argument("--stop-after-idle", default=None, help="stop when no message arrived for this long")
    p.add_argument("--workers", type=int, default=1, help="worker threads in this process (processes scale better)")
    p.add_argument("-i", "--process-id", type=int, default=None, help="this process's index in a cluster")
    p.add_argument("-a", "--addresses", default=None, help="cluster addresses 'host:port;host:port'")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from bytewax.recovery import RecoveryConfig, init_db_dir
    from bytewax.run import cli_main

    from engine.metrics import serve_metrics
    from flows.iot import build_flow, load_config

    sections: dict[str, Any] = {}
    if args.mqtt:
        sections["mqtt"] = {"url": args.mqtt}
    if args.db is not None or args.config is None:
        sections["sink"] = {"db": str(db_path(args.db))}
    if args.recovery_dir is not None:
        sections["recovery_dir"] = str(args.recovery_dir)
    if args.epoch:
        sections["epoch_s"] = parse_duration(args.epoch)
    if args.stop_after_idle:
        sections["stop_after_idle_s"] = parse_duration(args.stop_after_idle)
    cfg = load_config(args.config, **sections)
    recovery = None
    if cfg.recovery_dir:
        rdir = Path(cfg.recovery_dir)
        if not any(rdir.glob("*.sqlite3")):
            rdir.mkdir(parents=True, exist_ok=True)
            init_db_dir(rdir, 1)
        recovery = RecoveryConfig(rdir)
    else:
        print(
            "tidegate: note: no --recovery-dir: open windows are lost if this process dies "
            "(stored rows stay exact: storage is idempotent)",
            file=sys.stderr,
        )
    if args.metrics_port:
        serve_metrics(args.metrics_port)
    addresses = args.addresses.split(";") if args.addresses else None
    print(
        f"tidegate: iot flow: {cfg.mqtt.url} {cfg.mqtt.subscription()} -> {cfg.sink.db}"
        f"{f' (recovery {cfg.recovery_dir})' if recovery else ''}",
        file=sys.stderr,
        flush=True,
    )
    cli_main(
        build_flow(cfg, durable=recovery is not None),  # no recovery: no snapshots to serialise
        workers_per_process=args.workers,
        process_id=args.process_id,
        addresses=addresses,
        epoch_interval=dt.timedelta(seconds=cfg.epoch_s),
        recovery_config=recovery,
    )
    return 0
