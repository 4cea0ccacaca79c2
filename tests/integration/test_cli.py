"""The `tidegate` command as a user runs it: real processes, real files, real DuckDB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from engine.samples.messy_files import Corpus

TIDEGATE = [sys.executable, "-m", "engine.cli"]


def tg(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIDEGATE, *args], capture_output=True, text=True, cwd=cwd, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("command", [[], ["ingest"], ["watch"], ["schemas"], ["demo"]])
def test_help_everywhere(command: list[str]) -> None:
    out = tg(*command, "--help")
    assert out.returncode == 0 and "usage: tidegate" in out.stdout


def test_ingest_json_output(corpus: Corpus, tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    out = tg("ingest", str(corpus.root), "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"received", "accepted", "rejected", "duplicates", "files"} <= set(report)
    assert report["received"] == report["accepted"] + report["rejected"] + report["duplicates"] == corpus.received
    assert len(report["files"]) == len(corpus.files)
    assert out.stderr == ""  # no progress bar when stderr is not a terminal


def test_ingest_table_and_default_db_from_env(corpus: Corpus, tmp_path: Path) -> None:
    out = tg("ingest", str(corpus.root / "vendor_a.dat"), env={"TIDEGATE_DB": str(tmp_path / "env.duckdb")})
    assert out.returncode == 0, out.stderr
    assert "vendor_a.dat" in out.stdout and "total" in out.stdout and "ignored columns Note" in out.stdout
    assert (tmp_path / "env.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ingest", "/no/such/path"], "no such file or folder: /no/such/path"),
        (["ingest", ".", "--schema", "nope"], "unknown schema 'nope'"),
        (["ingest"], "the following arguments are required"),
        (["watch", "/no/such/dir", "--once"], "not a folder"),
        (["watch", ".", "--every", "often"], "bad duration"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    out = tg(*args, "--db", str(tmp_path / "x.duckdb")) if args[0] in ("ingest", "watch") else tg(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr


def test_unreadable_files_are_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "junk.bin").write_bytes(os.urandom(2048))
    out = tg("ingest", str(tmp_path / "in"), "--db", str(tmp_path / "x.duckdb"), "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["rejected"] == 1


def test_locked_database_is_one_clear_line(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "x.duckdb"
    con = duckdb.connect(str(db))
    try:
        out = tg("ingest", str(corpus.root / "replay.csv"), "--db", str(db))
    finally:
        con.close()
    assert out.returncode == 1 and "one writer" in out.stderr and "Traceback" not in out.stderr


def test_schemas_lists_rules_and_reasons() -> None:
    out = tg("schemas", "--json")
    data = json.loads(out.stdout)
    assert set(data["schemas"]) == {"sensor_reading", "interaction"}
    assert "malformed_row" in data["reasons"]


def _count(db: Path, sql: str) -> int:
    for _ in range(100):  # the watcher may hold the write lock for a moment
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.IOException:
            time.sleep(0.1)
            continue
        try:
            return int(con.execute(sql).fetchone()[0])
        except duckdb.CatalogException:
            return 0
        finally:
            con.close()
    msg = "database stayed locked"
    raise AssertionError(msg)


def test_watch_once_never_ingests_the_same_content_twice(corpus: Corpus, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(corpus.root / "vendor_a.dat", inbox / "a.csv")
    assert tg("watch", str(inbox), "--db", str(db), "--once", "--settle", "0s").returncode == 0
    first = _count(db, "SELECT count(*) FROM ingest_runs")
    # Same bytes under another name, plus a hidden and a partial file: nothing new to ingest.
    shutil.copy(inbox / "a.csv", inbox / "copy-of-a.csv")
    (inbox / ".hidden.csv").write_text("device_id,ts,temp\nx,2024-01-01,1\n")
    (inbox / "upload.csv.part").write_text("device_id,ts,temp\nx,2024-01-01,1\n")
    out = tg("watch", str(inbox), "--db", str(db), "--once", "--settle", "0s")
    assert out.returncode == 0 and out.stdout == ""
    assert _count(db, "SELECT count(*) FROM ingest_runs") == first == 1
    # Changed content is new content.
    (inbox / "a.csv").write_text("device_id,ts,temp\nnew-dev,2024-01-01,1\n")
    tg("watch", str(inbox), "--db", str(db), "--once", "--settle", "0s")
    assert _count(db, "SELECT count(*) FROM readings WHERE device_id = 'new-dev'") == 1


def test_watch_ingests_files_on_arrival(corpus: Corpus, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen(
        [*TIDEGATE, "watch", str(inbox), "--db", str(db), "--settle", "0.3s", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        shutil.copy(corpus.root / "logs.log", inbox / "logs.ndjson")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _count(db, "SELECT count(*) FROM ingest_runs") < 1:
            time.sleep(0.3)
        shutil.copy(corpus.root / "archive.dat", inbox / "later.gz")
        while time.monotonic() < deadline and _count(db, "SELECT count(*) FROM ingest_runs") < 2:
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.terminate()  # SIGTERM: the watcher finishes a run in progress (and prints its report), then exits 0
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert _count(db, "SELECT count(*) FROM ingest_runs") == 2, err
    assert _count(db, "SELECT count(*) FROM readings") == 240
    # one JSON report per run (under load one run may take both files): check the files, not the run order
    files = {f["source"].rsplit("/", 1)[-1]: f for line in out.splitlines() if line.startswith("{")
             for f in json.loads(line)["files"]}  # fmt: skip
    assert set(files) == {"logs.ndjson", "later.gz"}, (out, err)
    assert files["logs.ndjson"]["format"] == "ndjson" and files["logs.ndjson"]["accepted"] == 120, out
    assert files["later.gz"]["accepted"] == 120, out


def test_every_schedule_keeps_running(tmp_path: Path, corpus: Corpus) -> None:
    db = tmp_path / "w.duckdb"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen(
        [*TIDEGATE, "watch", str(inbox), "--db", str(db), "--every", "0.5s", "--settle", "0s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        shutil.copy(corpus.root / "replay.csv", inbox / "r.csv")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _count(db, "SELECT count(*) FROM readings") < 50:
            time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert _count(db, "SELECT count(*) FROM readings") == 50


def test_sigterm_stops_a_scheduled_watcher_at_once_with_status_0(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen(
        [*TIDEGATE, "watch", str(inbox), "--db", str(tmp_path / "w.duckdb"), "--every", "10m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "w.duckdb").exists():
            time.sleep(0.1)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 5  # not after the 10 minute interval
