"""Scale-out is processes: two flow processes form one Bytewax cluster, each holding one MQTT session on a
shared subscription; the broker splits the stream between them, and the one DuckDB writer stores it once."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from bytewax.recovery import init_db_dir

from tests.integration.mqtt_broker import (
    TIDEGATE,
    Broker,
    broker,
    db_counts,
    flow_config,
    free_port,
    sim_report,
    start_simulator,
    wait_subscribed,
)

__all__ = ["broker"]


def _received(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    line = next(x for x in text.splitlines() if x.startswith('tidegate_events_total{flow="iot",outcome="received"'))
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.slow
def test_two_processes_split_one_stream_by_shared_subscription(broker: Broker, tmp_path: Path) -> None:
    flow_config(tmp_path / "flow.toml", extra="[mqtt]\npartitions = 2\n")
    (tmp_path / "rec").mkdir()
    init_db_dir(tmp_path / "rec", 1)
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    ports = [free_port(), free_port()]
    procs = []
    for i in range(2):
        with (tmp_path / f"flow{i}.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [
                        *TIDEGATE,
                        *("run", "iot", "--mqtt", broker.url, "--db", str(tmp_path / "db.duckdb")),
                        *("--config", str(tmp_path / "flow.toml"), "--recovery-dir", str(tmp_path / "rec")),
                        *("--stop-after-idle", "3s", "--epoch", "0.5s", "-i", str(i), "-a", addresses),
                        *("--metrics-port", str(ports[i])),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    try:
        for p in ports:
            wait_subscribed(p, timeout=60)
        sent = sim_report(start_simulator(broker, "--devices", "20", "--rate", "5", "--duration", "3s"))
        time.sleep(1.5)
        shares = [_received(p) for p in ports]
        for i, p in enumerate(procs):
            assert p.wait(90) == 0, (tmp_path / f"flow{i}.log").read_text()[-2000:]
    finally:
        for p in procs:
            p.kill()
    assert sum(shares) == sent["published"] == 300
    assert min(shares) > 0.2 * sent["published"]  # both processes took a real share
    got = db_counts(tmp_path / "db.duckdb")
    assert got["readings"] == got["distinct"] == got["windowed"] == 300
