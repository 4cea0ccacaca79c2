"""The IoT part of `make demo`: simulated devices -> MQTT -> the IoT flow -> DuckDB, with the live
dashboard up while it runs. Uses a local Mosquitto when installed; otherwise an in-process simulated
source (and says so). Ends by itself."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mosquitto() -> str | None:
    exe = shutil.which("mosquitto")
    if exe is None and Path("/usr/sbin/mosquitto").exists():
        exe = "/usr/sbin/mosquitto"
    return exe


def run_iot_demo(workdir: Path, seconds: float) -> None:
    """Run the IoT demo in `workdir` (created, and its IoT files replaced) for about `seconds` of traffic."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "iot.duckdb"
    for old in (db, workdir / "iot.duckdb.wal"):
        old.unlink(missing_ok=True)
    shutil.rmtree(workdir / "iot-recovery", ignore_errors=True)
    (workdir / "flow.toml").write_text(
        "# short windows so a short demo closes several\n[windows]\nlength_s = 5.0\nallowed_lateness_s = 2.0\n"
        "[detect]\nwarmup = 10\n"
    )
    exe = _mosquitto()
    if exe is None:
        print(
            "== IoT: Mosquitto is not installed: using an in-process simulated source instead (no MQTT, no dashboard)"
        )
        _in_process(workdir, db, seconds)
    else:
        _with_broker(exe, workdir, db, seconds)
    _report(db)


def _with_broker(exe: str, workdir: Path, db: Path, seconds: float) -> None:
    from engine.connectors.mqtt import MqttConfig, broker_config
    from engine.sim import FleetConfig
    from engine.sim.publish import simulate

    port, web = _port(), _port()
    data = workdir / "mosquitto"
    data.mkdir(exist_ok=True)
    (workdir / "mosquitto.conf").write_text(broker_config(port, data))
    url = f"mqtt://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "engine.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    with (workdir / "iot.log").open("ab") as log:
        procs.append(subprocess.Popen([exe, "-c", str(workdir / "mosquitto.conf")], stdout=log, stderr=log))
        time.sleep(0.5)
        procs.append(subprocess.Popen([*cli, "dashboard", "--mqtt", url, "--port", str(web)], stdout=log, stderr=log))
        flow = subprocess.Popen(
            [
                *(*cli, "run", "iot", "--mqtt", url, "--db", str(db), "--config", str(workdir / "flow.toml")),
                *("--recovery-dir", str(workdir / "iot-recovery"), "--stop-after-idle", "4s", "--epoch", "1s"),
            ],
            stdout=log,
            stderr=log,
        )
    try:
        print(f"== IoT: local Mosquitto on {url}; flow -> {db}")
        print(f"   live dashboard: http://127.0.0.1:{web}/dashboard  (up while the demo runs)")
        time.sleep(3)  # the flow connects and subscribes (its session then keeps everything)
        report = simulate(
            FleetConfig(devices=20, rate_hz=2, seed=7, anomaly_rate=0.01, bad_rate=0.03, late_rate=0.01, late_by_s=30),
            MqttConfig(url=url),
            seconds,
            client_id="tidegate-demo-sim",
        )
        print(f"   simulator sent {report.published:,} messages: {report.as_dict()['by_kind']}")
        flow.wait(120)
    finally:
        flow.kill()
        for p in reversed(procs):
            p.terminate()
            p.wait(10)


def _in_process(workdir: Path, db: Path, seconds: float) -> None:
    from bytewax.testing import run_main

    from engine.connectors.memory import MemorySource, batched
    from engine.sim import Fleet, FleetConfig
    from flows.iot import build_flow, load_config

    fleet = Fleet(FleetConfig(devices=20, rate_hz=2, seed=7, anomaly_rate=0.01, bad_rate=0.03))
    msgs = fleet.run(time.time() - seconds, int(seconds * 2))
    cfg = load_config(workdir / "flow.toml", sink={"db": str(db)})
    run_main(build_flow(cfg, source=MemorySource(batched([(m.topic, m.payload) for m in msgs], 500)), alerts=False))
    print(f"   simulated {len(msgs):,} messages: {fleet.counts}")


def _report(db: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        print(
            f"   stored {one('SELECT count(*) FROM readings'):,} readings, {one('SELECT count(*) FROM readings_1m')} "
            f"windows, {one('SELECT count(*) FROM anomalies')} anomalies, {one('SELECT count(*) FROM rejects')} rejects"
        )
        print("\n== IoT: latest window per device (table readings_1m)")
        _show(
            con,
            "SELECT device_id, strftime(window_start, '%H:%M:%S') AS window, count, round(temperature_c_mean, 2) "
            "AS temp_mean, round(temperature_c_std, 3) AS temp_std, round(humidity_pct_mean, 1) AS hum_mean "
            "FROM readings_1m QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY window_start DESC) = 1 "
            "ORDER BY device_id LIMIT 8",
        )
        print("\n== IoT: anomalies (table anomalies; also published on alerts/{device_id})")
        _show(
            con,
            "SELECT device_id, strftime(ts, '%H:%M:%S') AS time, measurement, kind, value, round(expected, 2) "
            "AS expected, score FROM anomalies ORDER BY ts LIMIT 8",
        )
        print("\n== IoT: dead letter by reason (table rejects)")
        _show(con, "SELECT reason, count(*) AS n FROM rejects GROUP BY 1 ORDER BY 2 DESC")
    finally:
        con.close()


def _show(con: Any, sql: str) -> None:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = [[str(v) for v in r] for r in cur.fetchall()]
    widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
