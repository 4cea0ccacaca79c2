"""`tidegate serve`: the low-latency server (Litestar on uvicorn with uvloop and httptools, or on Granian).

The ASGI server is chosen by measurement (`python -m bench.serve_http`, server pinned to one core, wrk c16):
uvicorn with uvloop and httptools serves /v1/predict at ~2x Granian's rps with a third of its p99, because
its whole request path runs on the one Python thread, while Granian hands every request between its Rust I/O
thread and the Python thread, two threads taking turns on one core. Its protocol sends each response with
one write instead of two (`engine.serve.wire`). `--server granian` remains for deployments that want it.

Models load from the registry when the server starts; promotes and rollbacks (CLI or admin API) swap them
while serving. Admin endpoints take the token from $TIDEGATE_ADMIN_TOKEN (or the config); without one they
are disabled.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

SERVERS = ("uvicorn", "granian")
APP = "engine.serve.app:app_from_env"  # a factory: each worker process builds the app from $CONFIG_ENV
GRACE_S = 5  # on SIGTERM, open requests (and the dashboard's event streams) get this long to finish


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve predictions and recommendations over HTTP",
        description="Serve POST /v1/predict/{model} (the registry's ONNX models), POST /v1/interactions and "
        "GET /v1/recommendations/{user_id}, admin promote/rollback, /health/*, /metrics and OpenAPI at /schema.",
    )
    p.add_argument(
        "--registry", type=Path, default=None, metavar="DIR", help="default $TIDEGATE_REGISTRY, else ./registry"
    )
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000; 0 is not allowed)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="serve.toml (see engine/serve/config.py)")
    p.add_argument(
        "--model",
        action="append",
        dest="models",
        default=None,
        metavar="NAME",
        help="an ONNX model to serve (repeatable; default: every tabular ONNX model in the registry)",
    )
    p.add_argument("--recommender", default=None, metavar="NAME", help="the recommender's name (default recommender)")
    p.add_argument(
        "--spool",
        type=Path,
        default=None,
        metavar="DIR",
        help="hand accepted/rejected interactions to the interactions flow through this folder",
    )
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        metavar="FILE",
        help="warm-start the real-time state from the interactions flow's snapshot",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; the real-time state is per process, so keep 1 "
        "unless recommendations may lag by worker)",
    )
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--server",
        default="uvicorn",
        choices=SERVERS,
        help="the ASGI server (default uvicorn, with uvloop and httptools: measured fastest on one core)",
    )
    p.add_argument(
        "--dashboard-mqtt",
        default=None,
        metavar="URL",
        help="also serve the live IoT dashboard at /dashboard, fed from this broker (e.g. mqtt://127.0.0.1:1883)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import TidegateError, UsageError

    try:
        importlib.import_module("engine.serve.wire" if args.server == "uvicorn" else args.server)  # fail early here

        from engine.serve.app import CONFIG_ENV
        from engine.serve.config import load_config
    except ImportError as exc:
        msg = f"the server needs the serve extra: pip install 'tidegate[serve]' ({exc})"
        raise TidegateError(msg) from exc
    if args.workers < 1:
        msg = f"--workers {args.workers}: use 1 or more"
        raise UsageError(msg)
    cfg = load_config(
        args.config,
        env=os.environ,
        registry=args.registry,
        host=args.host,
        port=args.port,
        models=tuple(args.models) if args.models else None,
        recommender=args.recommender,
        spool_dir=args.spool,
        state_file=args.state,
        log_level=args.log_level,
        dashboard_mqtt=args.dashboard_mqtt,
    )
    if not Path(cfg.registry).is_dir():
        msg = f"no registry at {cfg.registry}: train a model first or pass --registry DIR"
        raise UsageError(msg)
    if cfg.port == 0:
        msg = "--port 0: pick a port (the server prints no chosen port)"
        raise UsageError(msg)
    os.environ[CONFIG_ENV] = cfg.to_json().decode()  # the worker process builds the app from it
    print(f"tidegate serve: http://{cfg.host}:{cfg.port} (registry {cfg.registry})", file=sys.stderr, flush=True)
    if args.server == "granian":
        _granian(cfg.host, cfg.port, args.workers, cfg.log_level, cfg.access_log)
    else:
        _uvicorn(cfg.host, cfg.port, args.workers, cfg.log_level, cfg.access_log)
    return 0


def _uvicorn(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    import uvicorn

    from engine.serve.wire import OneWriteProtocol

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",  # uvloop when installed (the serve extra installs it)
        http=OneWriteProtocol,  # httptools (~2x h11's rps), one write per response
        ws="none",
        lifespan="on",
        log_level="debug" if log_level == "debug" else "warning",  # ours are JSON lines
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=GRACE_S,
    )


def _granian(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        APP,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_enabled=True,
        log_level=LogLevels.debug if log_level == "debug" else LogLevels.warning,
        log_access=access_log,
        websockets=False,
    ).serve()
