"""Benchmark (b): end to end through a local Mosquitto (broker-bound, and reported as such).

The same pre-encoded messages are published as fast as the QoS 1 publisher goes (1) to a bare paho
subscriber (QoS 1, auto-ack: the broker's own ceiling on this box) and (2) to the IoT flow process
(decode, windows, detectors, DuckDB, acks after committed snapshots), timed from the first publish until
the subscriber has everything / the flow has stored everything. Skipped when Mosquitto is not installed.

    python -m bench.iot_e2e [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from engine.connectors.mqtt import MqttConfig, broker_config
from engine.connectors.publisher import Publisher
from engine.sim import Fleet, FleetConfig

RATIO_FLOOR = 0.2  # flow vs bare subscriber; both broker-bound, the flow also stores and waits for commits


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _messages(n_devices: int, ticks: int) -> list[tuple[str, bytes]]:
    fleet = Fleet(FleetConfig(devices=n_devices, seed=9))
    return [(m.topic, m.payload) for m in fleet.run(time.time() - ticks, ticks)]


def _publish(url: str, msgs: list[tuple[str, bytes]]) -> float:
    pub = Publisher(MqttConfig(url=url), f"bench-pub-{time.time_ns()}")
    t0 = time.perf_counter()
    for topic, payload in msgs:
        pub.publish(topic, payload)
    pub.flush(300)
    pub.close()
    return t0


def bare_subscriber(url: str, port: int, msgs: list[tuple[str, bytes]]) -> float:
    got = [0]
    done = threading.Event()
    ready = threading.Event()

    def on_message(c: Any, u: Any, m: Any) -> None:
        got[0] += 1
        if got[0] >= len(msgs):
            done.set()

    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=paho.MQTTv5)
    c.on_connect = lambda cl, *_: (cl.subscribe("sensors/#", qos=1), ready.set())
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.wait(10)
    time.sleep(0.3)
    t0 = _publish(url, msgs)
    done.wait(300)
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return elapsed


def _metric(port: int, line_start: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def flow_process(url: str, work: Path, msgs: list[tuple[str, bytes]]) -> float:
    mport = _port()
    cfg = work / "flow.toml"
    cfg.write_text("[windows]\nlength_s = 60.0\nallowed_lateness_s = 30.0\n")
    args = [sys.executable, "-m", "engine.cli", "run", "iot", "--mqtt", url, "--db", str(work / "e2e.duckdb")]
    args += ["--config", str(cfg), "--recovery-dir", str(work / "rec"), "--metrics-port", str(mport)]
    args += ["--stop-after-idle", "3s", "--epoch", "1s"]
    with (work / "flow.log").open("ab") as log:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _metric(mport, 'tidegate_mqtt_connected{client="tidegate-iot-0"}') == 1:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        time.sleep(0.5)
        t0 = _publish(url, msgs)
        stored = 'tidegate_events_total{flow="iot",outcome="stored",step="store"}'
        while _metric(mport, stored) < len(msgs) and time.monotonic() < deadline + 300:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        proc.wait(60)
    finally:
        proc.kill()
    return elapsed


def run(quick: bool) -> list[dict[str, Any]]:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        return [{"name": "skipped: mosquitto is not installed", "metric": "none", "value": 0.0}]
    devices, ticks = (200, 50) if quick else (1000, 60)
    msgs = _messages(devices, ticks)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        port = _port()
        (work / "m.conf").write_text(broker_config(port, work / "data", persistence=False))
        broker = subprocess.Popen(
            [exe, "-c", str(work / "m.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(0.5)
            url = f"mqtt://127.0.0.1:{port}"
            bare = bare_subscriber(url, port, msgs)
            flow = flow_process(url, work, msgs)
        finally:
            broker.terminate()
            broker.wait(10)
    n = len(msgs)
    return [
        {"name": "bare paho subscriber via Mosquitto", "metric": "ev_per_s", "value": n / bare, "note": f"{n:,} msgs"},
        {"name": "IoT flow via Mosquitto (stored)", "metric": "ev_per_s", "value": n / flow, "note": "broker-bound"},
        {
            "name": "ratio flow / bare subscriber",
            "metric": "ratio_e2e",
            "value": bare / flow,
            "note": f"floor {RATIO_FLOOR}x",
        },
    ]


def check(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"iot_e2e: {r['name']} is {r['value']:.2f}x, under the floor {RATIO_FLOOR}x"
        for r in results
        if r["metric"] == "ratio_e2e" and r["value"] < RATIO_FLOOR
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    for r in run(args.quick):
        print(json.dumps(r))


if __name__ == "__main__":
    main()
