"""The interactions flow: spool (as the server writes it) → DuckDB + dead letter + online state, resumable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from engine.serve.recommend import RealtimeState
from engine.serve.spool import Spool, SpoolLine, segments
from flows.interactions import RawLines, check_lines, run_interactions

T = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def _ok(user: str, item: str, minute: int, pos: str) -> SpoolLine:
    rec = {"user_id": user, "item_id": item, "event": "click", "ts": (T + dt.timedelta(minutes=minute)).isoformat()}
    return SpoolLine(kind="ok", received_at=T, position=pos, record=rec)


def _reject(pos: str) -> SpoolLine:
    return SpoolLine(
        kind="reject",
        received_at=T,
        position=pos,
        raw='{"user_id": "x"}',
        reason="missing_field",
        message="item_id is missing",
    )


def _count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])  # type: ignore[index]


def test_spooled_interactions_are_stored_once_with_rejects_and_online_state(tmp_path: Path) -> None:
    spool_dir, db, state = tmp_path / "spool", tmp_path / "t.duckdb", tmp_path / "state.json"
    spool = Spool(spool_dir)
    spool.append([_ok("u1", "a", 0, "r1 0"), _ok("u1", "b", 1, "r1 1"), _reject("r1 2"), _ok("u2", "a", 2, "r1 3")])
    spool.append([_ok("u1", "a", 0, "r2 0")])  # the same interaction sent twice: a duplicate
    first = run_interactions(spool_dir, db, state)
    assert (first.received, first.accepted, first.rejected, first.duplicates) == (5, 3, 1, 1)
    assert _count(db, "SELECT count(*) FROM interactions") == 3
    assert _count(db, "SELECT count(*) FROM rejects WHERE reason = 'missing_field' AND position = 'r1 2'") == 1
    snap = RealtimeState.decode(state.read_bytes())
    assert snap.users == {"u1": ["b", "a"], "u2": ["a"]}
    assert snap.positions == {segments(spool_dir)[0].name: segments(spool_dir)[0].stat().st_size}

    again = run_interactions(spool_dir, db, state)  # resumes from the state's positions: nothing new
    assert again.received == 0
    spool.append([_ok("u3", "c", 5, "r3 0")])
    spool.close()
    more = run_interactions(spool_dir, db, state)
    assert (more.received, more.accepted) == (1, 1)
    assert _count(db, "SELECT count(*) FROM interactions") == 4

    state.unlink()  # lose the checkpoint: a full replay stores nothing twice
    replay = run_interactions(spool_dir, db, state)
    assert replay.received == 6 and replay.accepted == 0
    assert _count(db, "SELECT count(*) FROM interactions") == 4
    assert _count(db, "SELECT count(*) FROM rejects") == 1


def test_a_garbled_or_invalid_spool_line_is_dead_lettered_not_fatal() -> None:
    good = b'{"kind":"ok","received_at":"2024-06-01T12:00:00Z","position":"p0","record":{"user_id":"u","item_id":"i",'
    good += b'"event":"view","ts":"2024-06-01T12:00:00Z"}}'
    invalid = good.replace(b'"view"', b'"teleport"').replace(b"p0", b"p1")
    checked = check_lines(RawLines("seg", 100, [good, b"{garbage", invalid]))
    assert checked.rows.height == 1 and checked.received == 3
    assert checked.rejects.get_column("reason").to_list() == ["bad_spool_line", "invalid_choice"]
    assert checked.pairs == [("u", "i")]
