"""A real Mosquitto on 127.0.0.1, started by the test itself on a free port in a temporary folder
(persistence on, lossless limits: `engine.connectors.mqtt.broker_config`). Skips when not installed."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.connectors.mqtt import broker_config

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(broker_config(self.port, self.data))
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        assert MOSQUITTO is not None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        msg = f"mosquitto did not start on port {self.port}: {self.log.read_text()[-2000:]}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Graceful stop (SIGTERM): Mosquitto writes its persistence file on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; `make sysdeps` does it)")
    b = Broker(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.stop()


TIDEGATE = [sys.executable, "-m", "engine.cli"]


def flow_config(path: Path, *, window_s: float = 2.0, lateness_s: float = 1.0, extra: str = "") -> Path:
    """A flow config with short windows, as the tests use."""
    path.write_text(
        f"[windows]\nlength_s = {window_s}\nallowed_lateness_s = {lateness_s}\n[detect]\nwarmup = 10\n{extra}"
    )
    return path


def start_flow(
    broker: Broker,
    work: Path,
    *,
    recovery: bool = True,
    idle_s: float = 4.0,
    metrics_port: int | None = None,
    extra: list[str] | None = None,
    log_name: str = "flow.log",
) -> subprocess.Popen[bytes]:
    args = [
        *TIDEGATE,
        "run",
        "iot",
        "--mqtt",
        broker.url,
        "--db",
        str(work / "db.duckdb"),
        "--config",
        str(work / "flow.toml"),
        "--stop-after-idle",
        f"{idle_s}s",
        "--epoch",
        "0.5s",
    ]
    if recovery:
        args += ["--recovery-dir", str(work / "recovery")]
    if metrics_port:
        args += ["--metrics-port", str(metrics_port)]
    with (work / log_name).open("ab") as log:
        return subprocess.Popen(args + (extra or []), stdout=subprocess.DEVNULL, stderr=log)


def start_simulator(broker: Broker, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TIDEGATE, "simulate", "--mqtt", broker.url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def sim_report(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def wait_exit(proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0, log.read_text()[-3000:]


def db_counts(db: Path) -> dict[str, Any]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "readings": one("SELECT count(*) FROM readings"),
            "distinct": one("SELECT count(*) FROM (SELECT DISTINCT device_id, ts FROM readings)"),
            "rejects": one("SELECT count(*) FROM rejects"),
            "late": one("SELECT count(*) FROM rejects WHERE reason = 'late'"),
            "windowed": one("SELECT coalesce(sum(count), 0) FROM readings_1m"),
            "windows": one("SELECT count(*) FROM readings_1m"),
            "anomalies": one("SELECT count(*) FROM anomalies"),
            "reasons": dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall()),
        }
    finally:
        con.close()


def wait_subscribed(metrics_port: int, timeout: float = 30) -> str:
    """Wait until the flow's MQTT source reports a connection on its /metrics (it subscribes right then)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
        except OSError:
            text = ""
        if "tidegate_mqtt_connected{" in text and "} 1.0" in text.split("tidegate_mqtt_connected{", 1)[1][:80]:
            time.sleep(0.5)  # the SUBSCRIBE follows the CONNACK
            return text
        time.sleep(0.1)
    msg = "the flow did not connect to the broker"
    raise AssertionError(msg)
