"""The files flow end to end on the messy corpus: exact counts per file, nothing stored twice, crash-safe."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from engine.samples.messy_files import Corpus
from flows.files import ingest_paths


def _check_against(corpus: Corpus, report) -> None:  # type: ignore[no-untyped-def]
    names = {Path(f.source).name: f for f in report.files}
    assert set(names) == set(corpus.files)
    for name, exp in corpus.files.items():
        f = names[name]
        assert f.received == f.accepted + f.rejected + f.duplicates, name
        assert (f.received, f.rejected, f.accepted + f.duplicates) == (exp.received, exp.rejected, exp.stored), name
    assert report.received == corpus.received
    assert report.accepted == corpus.distinct_good
    assert report.rejected == corpus.rejected


@pytest.mark.parametrize("batch_rows", [100_000, 37])
def test_messy_corpus_counts_and_dead_letter(corpus: Corpus, tmp_path: Path, batch_rows: int) -> None:
    db = tmp_path / "t.duckdb"
    report = ingest_paths([corpus.root], db, batch_rows=batch_rows)
    _check_against(corpus, report)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM readings").fetchone() == (corpus.distinct_good,)
    by_reason = dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall())
    assert by_reason == corpus.rejected_by_reason
    # Every reject says where it was and keeps the record as received.
    row = con.execute(
        "SELECT position, raw, message FROM rejects WHERE source LIKE '%vendor_a.dat' AND reason = 'out_of_range'"
    ).fetchone()
    assert row[0] == "line 4" and json.loads(row[1])["Temp"] == "200,5" and "temperature_c" in row[2]
    row = con.execute("SELECT position, raw FROM rejects WHERE reason = 'bad_json'").fetchone()
    assert row == ("line 9", '{"device_id": "dev-009", "timestamp":')
    unknown = dict(con.execute("SELECT regexp_extract(source, '[^/]+$'), unknown_columns FROM ingest_runs").fetchall())
    assert unknown["vendor_a.dat"] == ["Note"] and unknown["vendor_b.txt"] == ["firmware"]
    assert unknown["export.bin"] == []
    statuses = dict(con.execute("SELECT regexp_extract(source, '[^/]+$'), status FROM ingest_runs").fetchall())
    assert {k for k, v in statuses.items() if v == "unreadable"} == {"random.bin", "empty.csv", "truncated.parquet"}


def test_second_run_stores_nothing_new(corpus: Corpus, tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    first = ingest_paths([corpus.root], db)
    second = ingest_paths([corpus.root], db)
    assert second.accepted == 0
    assert second.duplicates == first.accepted + first.duplicates
    assert second.received == first.received and second.rejected == first.rejected
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM readings").fetchone() == (corpus.distinct_good,)
    assert con.execute("SELECT count(DISTINCT run_id) FROM ingest_run_totals").fetchone() == (2,)


def test_offsets_are_stored_as_utc_instants(corpus: Corpus, tmp_path: Path) -> None:
    from engine.samples.messy_files import BASE

    db = tmp_path / "t.duckdb"
    ingest_paths([corpus.root / "logs.log"], db)  # written with +02:00 offsets
    con = duckdb.connect(str(db), read_only=True)
    first = con.execute("SELECT min(ts) FROM readings").fetchone()[0]
    assert first == BASE + dt.timedelta(seconds=37 * 2 * 120)  # the third file's first reading, rows=120


class Crash(RuntimeError):
    pass


def test_crash_and_resume_loses_nothing_and_stores_nothing_twice(corpus: Corpus, tmp_path: Path) -> None:
    db, rec = tmp_path / "t.duckdb", tmp_path / "recovery"
    calls = {"n": 0}

    def crash_after_some(stats) -> None:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 9:  # after the 9th batch is stored, before its snapshot
            raise Crash

    with pytest.raises(Crash):
        ingest_paths(
            [corpus.root],
            db,
            batch_rows=20,
            recovery_dir=rec,
            on_progress=crash_after_some,
            snapshot_every=dt.timedelta(milliseconds=1),
        )
    assert (rec / "run_id").exists()
    report = ingest_paths(
        [corpus.root], db, batch_rows=20, recovery_dir=rec, snapshot_every=dt.timedelta(milliseconds=1)
    )
    assert not rec.exists()  # a finished run clears its recovery folder
    names = {Path(f.source).name: f for f in report.files}
    for name, exp in corpus.files.items():
        f = names[name]
        assert (f.received, f.rejected, f.accepted + f.duplicates) == (exp.received, exp.rejected, exp.stored), name
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings").fetchone() == (
        corpus.distinct_good,
        corpus.distinct_good,
    )
    assert con.execute("SELECT count(*) FROM rejects").fetchone() == (corpus.rejected,)
    assert con.execute("SELECT count(*) FROM ingest_runs").fetchone() == (len(corpus.files),)
