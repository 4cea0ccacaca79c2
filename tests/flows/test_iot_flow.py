"""The IoT dataflow on an in-memory source (no broker): balances, windows, late, anomalies, recovery."""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import duckdb
import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, run_main

from engine.connectors.decode import decode_batch
from engine.connectors.memory import MemorySource, batched
from engine.connectors.messages import MessageBatch
from engine.connectors.recovery_probe import CommitProbe
from engine.sim import Fleet, FleetConfig
from flows.iot import Sharder, build_flow, load_config

T0 = 1_714_557_600.0


def _fleet(**kw: float) -> tuple[Fleet, list[tuple[str, bytes]]]:
    fleet = Fleet(FleetConfig(devices=12, rate_hz=1, seed=3, **kw))  # type: ignore[arg-type]
    msgs = fleet.run(T0, 400)
    return fleet, [(m.topic, m.payload) for m in msgs]


def test_every_message_is_stored_or_dead_lettered_and_windows_match_sql(tmp_path: Path) -> None:
    fleet, msgs = _fleet(anomaly_rate=0.01, bad_rate=0.03, late_rate=0.01, late_by_s=90)
    cfg = load_config(None, windows={"length_s": 60, "allowed_lateness_s": 5}, sink={"db": str(tmp_path / "t.db")})
    run_main(build_flow(cfg, source=MemorySource(batched(msgs, 250)), alerts=False))
    con = duckdb.connect(str(tmp_path / "t.db"), read_only=True)
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    readings, rejects = one("SELECT count(*) FROM readings"), one("SELECT count(*) FROM rejects")
    good = sum(fleet.counts.get(k, 0) for k in ("good", "spike", "stuck"))
    assert readings + rejects == len(msgs)
    late = one("SELECT count(*) FROM rejects WHERE reason = 'late'")
    # A "late" reading is on time when it is the first its device sends (no watermark yet): at most one each.
    assert fleet.counts["late"] - 12 <= late <= fleet.counts["late"] > 20
    assert readings == good + fleet.counts["late"] - late
    assert one("SELECT sum(count) FROM readings_1m") == readings
    assert one(
        """SELECT count(*) FROM readings_1m w JOIN (
               SELECT device_id, time_bucket(INTERVAL 60 SECOND, ts) AS ws, count(*) AS n,
                      avg(temperature_c) AS m, stddev_samp(pressure_hpa) AS s, min(vibration_g) AS v
               FROM readings GROUP BY ALL) r ON w.device_id = r.device_id AND w.window_start = r.ws
           WHERE w.count = r.n AND abs(w.temperature_c_mean - r.m) < 1e-9
             AND abs(coalesce(w.pressure_hpa_std, 0) - coalesce(r.s, 0)) < 1e-9 AND w.vibration_g_min = r.v"""
    ) == one("SELECT count(*) FROM readings_1m")
    row = con.execute("SELECT position, message FROM rejects WHERE reason = 'late' LIMIT 1").fetchone()
    assert row is not None and "@" in row[0] and "watermark" in row[1]
    assert one("SELECT count(*) FROM anomalies") > 0
    con.close()


def test_a_second_run_over_the_same_messages_changes_nothing(tmp_path: Path) -> None:
    _, msgs = _fleet(anomaly_rate=0.01, bad_rate=0.05)
    cfg = load_config(None, windows={"length_s": 30}, sink={"db": str(tmp_path / "t.db")})
    counts = []
    for _ in range(2):
        run_main(build_flow(cfg, source=MemorySource(batched(msgs, 500)), alerts=False))
        con = duckdb.connect(str(tmp_path / "t.db"), read_only=True)
        counts.append(
            [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("readings", "rejects", "anomalies")]
            + [con.execute("SELECT sum(count) FROM readings_1m").fetchone()[0]]
        )
        con.close()
    assert counts[0] == counts[1] and counts[0][0] > 0


def test_items_are_micro_batches_and_windows_close_without_new_readings(tmp_path: Path) -> None:
    _, msgs = _fleet()
    out: list[object] = []
    clock = iter(float(x) for x in range(10**6))
    cfg = load_config(None, windows={"length_s": 60, "allowed_lateness_s": 1, "shards": 4})
    flow = build_flow(
        cfg,
        source=MemorySource(batched(msgs, 1000)),
        clock=lambda: next(clock),
        store=False,
        alerts=False,
        extra_sink=TestingSink(out),
    )
    run_main(flow)
    kinds = {type(x).__name__ for x in out}
    assert {"Readings", "WindowAggs"} <= kinds
    assert len(out) < len(msgs) / 50  # batches, not one item per message
    windows = [w for x in out if type(x).__name__ == "WindowAggs" for w in x.rows]  # type: ignore[attr-defined]
    assert sum(w.count for w in windows) == sum(len(x.rows) for x in out if type(x).__name__ == "Readings")  # type: ignore[attr-defined]


def test_the_recovery_probe_reads_the_source_snapshot_bytewax_resumes_from(tmp_path: Path) -> None:
    """Pins the Bytewax 0.21 recovery layout the MQTT source's acks rely on."""
    _, msgs = _fleet()
    rec = tmp_path / "rec"
    rec.mkdir()
    init_db_dir(rec, 1)
    cfg = load_config(None, sink={"db": str(tmp_path / "t.db")})
    batches = batched(msgs, 400)
    run_main(
        build_flow(cfg, source=MemorySource(batches), alerts=False),
        epoch_interval=dt.timedelta(seconds=0),
        recovery_config=RecoveryConfig(rec),
    )
    assert CommitProbe(rec, "iot.mqtt", "memory").committed() == len(batches)
    assert CommitProbe(rec, "iot.mqtt", "no-such-part").committed() is None


@pytest.mark.parametrize("bad", ["[windows]\nlength_s = 'x'\n", "[nope]\na = 1\n"])
def test_a_bad_config_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    from engine.errors import UsageError

    path = tmp_path / "flow.toml"
    path.write_text(bad)
    with pytest.raises(UsageError, match="bad flow config"):
        load_config(path)


def test_the_sharder_splits_columns_by_device_hash_keeping_arrival_order() -> None:
    _, msgs = _fleet()
    readings, _dead = decode_batch(MessageBatch("t", msgs[:600], 0.0))
    parts = Sharder(4)((readings, [], 0.0))
    assert sum(len(p) for _, p in parts) == len(readings) and len(parts) > 1
    for key, part in parts:
        ids = part.device_id.tolist()
        assert {zlib.crc32(d.encode()) % 4 for d in ids} == {int(key)}
        mine = [r for r in readings.rows if zlib.crc32(r.device_id.encode()) % 4 == int(key)]
        assert part.rows == mine


def test_a_run_without_recovery_serialises_no_state_and_gives_the_same_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytewax snapshots every epoch even without recovery; `durable=False` (what `tidegate run iot` passes
    without --recovery-dir) makes those snapshots empty, and changes nothing else."""
    from engine.connectors.windows import ShardWindows
    from models.anomaly import ShardDetectors

    _, msgs = _fleet(anomaly_rate=0.02, bad_rate=0.02)
    cfg = load_config(None, windows={"length_s": 60, "allowed_lateness_s": 1})
    calls = {"windows": 0, "detect": 0}
    win_snapshot, det_snapshot = ShardWindows.snapshot, ShardDetectors.snapshot

    def counted_win(self: ShardWindows, now: float) -> bytes:
        calls["windows"] += 1
        return win_snapshot(self, now)

    def counted_det(self: ShardDetectors) -> bytes:
        calls["detect"] += 1
        return det_snapshot(self)

    monkeypatch.setattr(ShardWindows, "snapshot", counted_win)
    monkeypatch.setattr(ShardDetectors, "snapshot", counted_det)
    outputs, counts = [], []
    for durable in (True, False):
        out: list[object] = []
        flow = build_flow(
            cfg,
            source=MemorySource(batched(msgs, 200)),
            clock=lambda: T0 + 500,  # a clock snapshots do not advance (they read it too)
            store=False,
            alerts=False,
            extra_sink=TestingSink(out),
            durable=durable,
        )
        before = dict(calls)
        run_main(flow, epoch_interval=dt.timedelta(seconds=0))
        counts.append({k: calls[k] - before[k] for k in calls})
        outputs.append([(type(x).__name__, len(getattr(x, "rows", x))) for x in out])
    assert counts[0]["windows"] > 0 and counts[0]["detect"] > 0  # durable: serialised at every epoch
    assert counts[1] == {"windows": 0, "detect": 0}
    assert outputs[0] == outputs[1] and outputs[0]
