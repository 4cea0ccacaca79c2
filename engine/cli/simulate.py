"""`tidegate simulate`: publish simulated sensor readings over MQTT (QoS 1) and print what was sent."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.cli.common import parse_duration


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="publish simulated device readings over MQTT",
        description="Simulate N devices, each publishing a sensor_reading JSON (QoS 1) R times a second to "
        "sensors/{device_id}, with a daily cycle, noise and drift, injected anomalies (spikes, stuck values), "
        "malformed and late messages. Prints the counts per kind as JSON at the end.",
    )
    p.add_argument("--devices", type=int, default=10)
    p.add_argument("--rate", type=float, default=1.0, help="readings per second per device (default 1)")
    p.add_argument("--duration", default="10s", help="how long to publish, e.g. 30s, 5m (default 10s)")
    p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    p.add_argument("--topic", default="sensors/{device_id}")
    p.add_argument("--anomaly-rate", type=float, default=0.0, help="chance per reading that an anomaly starts")
    p.add_argument("--bad-rate", type=float, default=0.0, help="chance per message that it is malformed")
    p.add_argument("--late-rate", type=float, default=0.0, help="chance per message of a late reading")
    p.add_argument("--late-by", default="120s", help="how far behind a late reading is (default 120s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--client-id", default="tidegate-sim")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.connectors.mqtt import MqttConfig, parse_url
    from engine.errors import UsageError
    from engine.sim import FleetConfig
    from engine.sim.publish import simulate

    parse_url(args.mqtt)
    if args.devices < 1 or args.rate <= 0:
        msg = "--devices must be >= 1 and --rate > 0"
        raise UsageError(msg)
    for name in ("anomaly_rate", "bad_rate", "late_rate"):
        if not 0 <= getattr(args, name) <= 1:
            msg = f"--{name.replace('_', '-')} must be between 0 and 1"
            raise UsageError(msg)
    fleet = FleetConfig(
        devices=args.devices,
        rate_hz=args.rate,
        seed=args.seed,
        anomaly_rate=args.anomaly_rate,
        bad_rate=args.bad_rate,
        late_rate=args.late_rate,
        late_by_s=parse_duration(args.late_by),
        topic=args.topic,
    )
    report = simulate(fleet, MqttConfig(url=args.mqtt), parse_duration(args.duration), client_id=args.client_id)
    print(json.dumps(report.as_dict()), flush=True)
    if not report.acked:
        print("tidegate: warning: the broker did not acknowledge every message", file=sys.stderr)
        return 1
    return 0
