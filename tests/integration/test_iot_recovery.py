"""Recovery against a real Mosquitto: the flow killed -9 three times mid-stream, and the broker restarted
mid-stream. Afterwards `readings` holds exactly the good readings published (none lost, none twice),
every other message is in the dead letter, and every stored reading is counted in exactly one window."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

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

SIM = ("--devices", "20", "--rate", "10", "--anomaly-rate", "0.01", "--bad-rate", "0.03", "--seed", "7")


def _assert_exact(got: dict, sent: dict) -> None:
    assert sent["late"] == 0 and sent["bad"] > 0
    assert got["readings"] == sent["good"], (got, sent)  # 0 lost
    assert got["distinct"] == got["readings"]  # 0 duplicated
    assert got["rejects"] == sent["bad"]
    assert got["readings"] + got["rejects"] == sent["published"]
    assert got["windowed"] == got["readings"]  # each reading in exactly one window, after the replays too


@pytest.mark.slow
def test_flow_killed_three_times_loses_and_duplicates_nothing(broker: Broker, tmp_path: Path) -> None:
    flow_config(tmp_path / "flow.toml", window_s=2.0, lateness_s=5.0)
    port = free_port()
    flow = start_flow(broker, tmp_path, metrics_port=port, idle_s=4)
    wait_subscribed(port)
    sim = start_simulator(broker, *SIM, "--duration", "12s")
    rng = random.Random(int(os.environ.get("TIDEGATE_TEST_SEED", "3")))
    kills = []
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 2.5))
        os.kill(flow.pid, signal.SIGKILL)
        flow.wait(10)
        kills.append(time.monotonic())
        flow = start_flow(broker, tmp_path, idle_s=4)
    sent = sim_report(sim)
    wait_exit(flow, tmp_path / "flow.log", timeout=120)
    assert len(kills) == 3
    _assert_exact(db_counts(tmp_path / "db.duckdb"), sent)


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    # Allowed lateness covers the outage: readings queued on the devices' side arrive seconds late.
    flow_config(tmp_path / "flow.toml", window_s=2.0, lateness_s=15.0)
    port = free_port()
    flow = start_flow(broker, tmp_path, metrics_port=port, idle_s=4)
    wait_subscribed(port)
    sim = start_simulator(broker, *SIM, "--duration", "8s")
    time.sleep(3)
    broker.restart(down_s=1.0)
    sent = sim_report(sim)
    wait_exit(flow, tmp_path / "flow.log", timeout=120)
    _assert_exact(db_counts(tmp_path / "db.duckdb"), sent)
