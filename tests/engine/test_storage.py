"""The DuckDB store: keys compare typed values, first occurrence wins, dedup across batches and runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import StorageError
from engine.schema import SENSOR_READING
from engine.storage import FileStats, Store
from engine.storage.columns import distinct_keys

UTC = dt.UTC


def frame(rows: list[tuple[str, dt.datetime, float | None]]) -> pl.DataFrame:
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


# -- numpy Columns (the IoT flow's batches) ------------------------------------------------------------
MEASURES = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")


def columns(rows: list[tuple[str, dt.datetime, float | None]]) -> dict[str, np.ndarray]:
    ids = np.empty(len(rows), dtype=object)
    ids[:] = [r[0] for r in rows]
    us = [(r[1] - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1) for r in rows]
    return {
        "device_id": ids,
        "ts": np.array(us, dtype=np.int64).view("datetime64[us]"),
        "temperature_c": np.array([r[2] for r in rows], dtype=np.float64),  # None: NaN, stored as NULL
        **{m: np.full(len(rows), np.nan) for m in MEASURES[1:]},
    }


def test_columns_and_frames_store_the_same_rows(tmp_path: Path) -> None:
    rows = [("a", T0, 1.5), ("b", T0 + dt.timedelta(microseconds=7), None), ("a", T0, 2.0)]
    stored = []
    for name, batch in (("frame", frame(rows)), ("columns", columns(rows))):
        with Store(tmp_path / f"{name}.duckdb") as store:
            assert store.insert_new(SENSOR_READING, batch) == 2
            stored.append(store.query("SELECT * FROM readings ORDER BY device_id"))
    assert stored[0] == stored[1]
    assert stored[1][1][1] == T0 + dt.timedelta(microseconds=7) and stored[1][1][2] is None


def test_columns_are_written_in_slices_and_the_first_occurrence_still_wins(tmp_path: Path) -> None:
    from engine.storage.columns import SLICE_ROWS

    n = SLICE_ROWS + 500  # two slices; every key appears twice, the copy in the second slice
    rows = [(f"d{i % 250}", T0 + dt.timedelta(seconds=i // 250), float(i)) for i in range(n - 200)]
    rows += [(d, t, -1.0) for d, t, _ in rows[:200]]
    with Store(tmp_path / "t.duckdb") as store:
        assert store.insert_new(SENSOR_READING, columns(rows)) == n - 200
        assert store.insert_new(SENSOR_READING, columns(rows[:10])) == 0  # a replay
        assert store.query("SELECT count(*), min(temperature_c) FROM readings") == [(n - 200, 0.0)]


def test_windows_and_anomalies_are_replaced_on_their_natural_keys(tmp_path: Path) -> None:
    def windows(values: list[tuple[str, int, int]]) -> dict[str, np.ndarray]:
        ids = np.empty(len(values), dtype=object)
        ids[:] = [v[0] for v in values]
        start = np.array([v[1] * 1_000_000 for v in values], dtype=np.int64).view("datetime64[us]")
        return {"device_id": ids, "window_start": start, "window_end": start, "count": np.array([v[2] for v in values])}

    with Store(tmp_path / "t.duckdb") as store:
        assert store.upsert_windows(windows([("a", 0, 1), ("b", 0, 2), ("a", 0, 3)])) == 2  # the last wins
        assert store.upsert_windows(windows([("b", 0, 5), ("b", 60, 6)])) == 2  # replaces b@0, adds b@60
        got = store.query("SELECT device_id, epoch(window_start)::INT, count FROM readings_1m ORDER BY ALL")
    assert got == [("a", 0, 3), ("b", 0, 5), ("b", 60, 6)]


def test_replacing_works_on_files_written_with_a_primary_key(tmp_path: Path) -> None:
    """Files from before issue 3 have PRIMARY KEY (device_id, ts, measurement) on `anomalies`."""
    with Store(tmp_path / "t.duckdb") as store:
        store.query(
            "CREATE TABLE anomalies (device_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, measurement VARCHAR NOT "
            "NULL, kind VARCHAR NOT NULL, value DOUBLE, score DOUBLE, expected DOUBLE, detector VARCHAR, "
            "detected_at TIMESTAMPTZ, PRIMARY KEY (device_id, ts, measurement))"
        )
        one = {
            "device_id": np.array(["a"], dtype=object),
            "ts": np.array([0], dtype="datetime64[us]"),
            "measurement": np.array(["temperature_c"], dtype=object),
            "kind": np.array(["spike"], dtype=object),
            "value": np.array([9.0]),
        }
        for value in (9.0, 10.0):
            store.upsert_anomalies({**one, "value": np.array([value])})
        assert store.query("SELECT count(*), max(value) FROM anomalies") == [(1, 10.0)]


def test_rejects_from_columns_are_idempotent_and_late_keys_are_found(tmp_path: Path) -> None:
    rejects = {
        "source": np.array(["sensors/a", "sensors/a"], dtype=object),
        "position": np.array(["sensors/a#1", "sensors/a#2"], dtype=object),
        "raw": np.array(["{", None], dtype=object),
        "reason": np.array(["bad_json", "bad_json"], dtype=object),
        "message": np.array(["m", "m"], dtype=object),
        "received_at": np.array([0, 0], dtype="datetime64[us]"),
        "run_id": np.array(["iot", "iot"], dtype=object),
    }
    with Store(tmp_path / "t.duckdb") as store:
        store.add_rejects(rejects)
        store.add_rejects(rejects)
        assert store.query("SELECT count(*) FROM rejects") == [(2,)]
        store.insert_new(SENSOR_READING, columns([("a", T0, 1.0)]))
        probe = columns([("b", T0, 1.0), ("a", T0, 5.0), ("a", T0 + dt.timedelta(seconds=1), 1.0)])
        assert store.stored_positions(SENSOR_READING, probe) == {1}


def test_a_bad_setting_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="memory_limit"):
        Store(tmp_path / "t.duckdb", settings={"memory_limit": "lots"})
    with Store(tmp_path / "t.duckdb", settings={"memory_limit": "32MB", "threads": 1}) as store:
        assert store.query("SELECT current_setting('threads')") == [(1,)]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 3)), max_size=30))
def test_distinct_keys_is_true_exactly_when_no_key_repeats(keys: list[tuple[str | None, int]]) -> None:
    ids = np.empty(len(keys), dtype=object)
    ids[:] = [k[0] for k in keys]
    cols = {"id": ids, "ts": np.array([k[1] for k in keys], dtype=np.int64).view("datetime64[us]")}
    assert distinct_keys(cols, ["id", "ts"]) == (len(set(keys)) == len(keys))


def test_a_store_waits_for_a_reader_in_another_process_when_asked(tmp_path: Path) -> None:
    """The report after a run opens the file again: another process's reader holding it for a moment must
    delay the report, not lose it (a watcher lost a run's report that way under load)."""
    import subprocess
    import sys
    import time

    db = tmp_path / "held.duckdb"
    with Store(db) as store:
        store.con.execute("CREATE TABLE t (x INT)")
    code = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(1.5)"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StorageError, match="one writer"):
            Store(db, read_only=True)
        t0 = time.monotonic()
        with Store(db, read_only=True, wait_s=30) as store:  # opens once the holder exits
            assert store.query("SELECT count(*) FROM t") == [(0,)]
        assert time.monotonic() - t0 < 30
