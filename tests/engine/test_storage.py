"""The DuckDB store: keys compare typed values, first occurrence wins, dedup across batches and runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from engine.errors import StorageError
from engine.schema import SENSOR_READING
from engine.storage import FileStats, Store

UTC = dt.UTC


def frame(rows: list[tuple[str, dt.datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "device_id": [r[0] for r in rows],
            "ts": pl.Series([r[1] for r in rows], dtype=pl.Datetime("us", "UTC")),
            "temperature_c": [r[2] for r in rows],
            "humidity_pct": pl.Series([None] * len(rows), dtype=pl.Float64),
            "pressure_hpa": pl.Series([None] * len(rows), dtype=pl.Float64),
            "vibration_g": pl.Series([None] * len(rows), dtype=pl.Float64),
        }
    )


T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)


def test_insert_new_dedups_within_batch_and_against_stored(tmp_path: Path) -> None:
    with Store(tmp_path / "t.duckdb") as store:
        first = frame([("a", T0, 1.0), ("a", T0, 2.0), ("b", T0, 3.0)])
        assert store.insert_new(SENSOR_READING, first) == 2
        # The same instant in another zone is the same key; a new device at that instant is not.
        other_zone = T0.astimezone(dt.timezone(dt.timedelta(hours=5)))
        assert store.insert_new(SENSOR_READING, frame([("a", other_zone, 9.0), ("c", T0, 4.0)])) == 1
        rows = store.query("SELECT device_id, temperature_c FROM readings ORDER BY device_id")
    assert rows == [("a", 1.0), ("b", 3.0), ("c", 4.0)]  # first occurrence wins


def test_overlapping_time_ranges_take_the_anti_join(tmp_path: Path) -> None:
    with Store(tmp_path / "t.duckdb") as store:
        rows = [(f"d{i % 3}", T0 + dt.timedelta(seconds=i), float(i)) for i in range(100)]
        assert store.insert_new(SENSOR_READING, frame(rows[:60])) == 60
        assert store.insert_new(SENSOR_READING, frame(rows[40:])) == 40
        assert store.query("SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings") == [(100, 100)]


def test_rejects_are_idempotent_per_run_source_position(tmp_path: Path) -> None:
    from engine.ingest.check import reject_frame

    rej = reject_frame(
        "f.csv", ["line 2", None], ["x", None], ["bad_type", "unreadable_file"], ["m", "m"], T0, "r1", "sensor_reading"
    )
    with Store(tmp_path / "t.duckdb") as store:
        store.ensure(SENSOR_READING)
        store.add_rejects(rej)
        store.add_rejects(rej)  # a replay after a crash
        assert store.query("SELECT count(*) FROM rejects") == [(2,)]


def test_run_log_and_hashes(tmp_path: Path) -> None:
    with Store(tmp_path / "t.duckdb") as store:
        store.ensure(SENSOR_READING)
        for status, sha in (("ok", "aa"), ("unreadable", "bb"), ("partial", "cc")):
            store.record_file(
                FileStats(
                    source=sha,
                    schema="sensor_reading",
                    run_id="r",
                    sha256=sha,
                    status=status,
                    received=3,
                    accepted=1,
                    rejected=1,
                    duplicates=1,
                    unknown_columns=["x"],
                )
            )
        assert store.ingested_hashes(SENSOR_READING) == {"aa", "bb"}
        files = store.run_files("r")
        assert [f.unknown_columns for f in files] == [["x"]] * 3 and all(f.balanced for f in files)
        assert store.query("SELECT files, received FROM ingest_run_totals") == [(3, 9)]


def test_a_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "t.duckdb"
    with Store(db) as store:
        store.ensure(SENSOR_READING)
        code = f"from engine.storage import Store; Store({str(db)!r})"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "one writer" in out.stderr


def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "dir.duckdb").mkdir()
    with pytest.raises(StorageError, match="cannot open"):
        Store(tmp_path / "dir.duckdb")
