"""The IoT path against a real Mosquitto: simulator -> MQTT -> flow process -> DuckDB, alerts and metrics."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import paho.mqtt.client as paho

from tests.integration.mqtt_broker import (
    Broker,
    broker,
    db_counts,
    flow_config,
    free_port,
    sim_report,
    start_flow,
    start_simulator,
    wait_exit,
    wait_subscribed,
)

__all__ = ["broker"]


def _collect_alerts(b: Broker, out: list[str], ready: threading.Event) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="alerts-test", protocol=paho.MQTTv5)
    c.on_connect = lambda cl, *_: (cl.subscribe("alerts/#", qos=1), ready.set())
    c.on_message = lambda _c, _u, m: out.append(m.topic)
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    return c


def test_simulated_devices_end_in_duckdb_with_every_message_accounted_for(broker: Broker, tmp_path: Path) -> None:
    flow_config(tmp_path / "flow.toml")
    alerts: list[str] = []
    ready = threading.Event()
    listener = _collect_alerts(broker, alerts, ready)
    assert ready.wait(5)
    port = free_port()
    flow = start_flow(broker, tmp_path, metrics_port=port, idle_s=3)
    wait_subscribed(port)
    sim = start_simulator(
        broker,
        *("--devices", "20", "--rate", "5", "--duration", "4s", "--seed", "4"),
        *("--anomaly-rate", "0.01", "--bad-rate", "0.05", "--late-rate", "0.02", "--late-by", "30s"),
    )
    sent = sim_report(sim)
    time.sleep(1.5)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    wait_exit(flow, tmp_path / "flow.log")
    listener.loop_stop()
    got = db_counts(tmp_path / "db.duckdb")

    assert sent["published"] == 400 and sent["bad"] > 0 and sent["late"] > 0
    # Every message lands exactly once: stored, or dead-lettered with a reason.
    assert got["readings"] + got["rejects"] == sent["published"]
    assert got["readings"] == got["distinct"]
    assert got["readings"] >= sent["good"]  # late readings of a device seen for the first time are on time
    assert sum(v for k, v in got["reasons"].items() if k != "late") == sent["bad"]
    assert 0 < got["late"] <= sent["late"]
    # Windows count each stored reading once, and agree with DuckDB's own aggregates.
    assert got["windowed"] == got["readings"]
    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    mismatched = con.execute(
        """SELECT count(*) FROM readings_1m w JOIN (
               SELECT device_id, time_bucket(INTERVAL 2 SECOND, ts) AS ws, count(*) AS n, avg(temperature_c) AS m,
                      stddev_samp(humidity_pct) AS s, max(pressure_hpa) AS p
               FROM readings GROUP BY ALL) r ON w.device_id = r.device_id AND w.window_start = r.ws
           WHERE w.count <> r.n OR abs(w.temperature_c_mean - r.m) > 1e-9
              OR abs(coalesce(w.humidity_pct_std, 0) - coalesce(r.s, 0)) > 1e-9 OR w.pressure_hpa_max <> r.p"""
    ).fetchone()
    con.close()
    assert mismatched == (0,)
    # Alerts: one MQTT message per stored anomaly, on alerts/{device_id}.
    assert got["anomalies"] > 0
    assert len(alerts) >= got["anomalies"] and all(t.startswith("alerts/dev-") for t in alerts)
    assert 'tidegate_events_total{flow="iot",outcome="received",step="decode"} 400.0' in metrics
    assert "tidegate_end_to_end_latency_seconds_bucket" in metrics
    assert "tidegate_window_close_lag_seconds_count" in metrics


def test_cli_help_and_usage_errors() -> None:
    import subprocess

    from tests.integration.mqtt_broker import TIDEGATE

    for cmd in (["simulate"], ["run", "iot"], ["dashboard"]):
        out = subprocess.run([*TIDEGATE, *cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: tidegate" in out.stdout
    bad = subprocess.run(
        [*TIDEGATE, "simulate", "--mqtt", "http://x", "--duration", "1s"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "bad MQTT URL" in bad.stderr and "Traceback" not in bad.stderr
