"""`tidegate dashboard`: serve the live IoT dashboard (fed by the flow's live MQTT topic)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the live IoT dashboard over HTTP",
        description="Serve a page with per-device live window aggregates and recent anomalies, updating "
        "itself over server-sent events. It subscribes to the flow's live topic on the broker.",
    )
    p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    p.add_argument("--live-topic", default="tidegate/live")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.connectors.mqtt import parse_url
    from engine.errors import TidegateError

    parse_url(args.mqtt)
    try:
        import uvicorn

        from engine.serve.dashboard import create_app
        from engine.serve.live import LiveConfig
    except ImportError as exc:
        msg = f"the dashboard needs the serve extra: pip install 'tidegate[serve]' ({exc})"
        raise TidegateError(msg) from exc
    app = create_app(LiveConfig(mqtt_url=args.mqtt, live_topic=args.live_topic))
    print(f"dashboard: http://{args.host}:{args.port}/dashboard", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
