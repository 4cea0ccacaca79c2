"""Benchmark: a clean sensor CSV through `tidegate ingest` vs DuckDB's own read_csv load, same file, same run.

Each measurement runs in a fresh child process (so peak RSS is per engine), timing the load itself after
imports. Medians over repeats.

    python -m bench.ingest_csv [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.rss import peak_rss_mb


@dataclass
class Result:
    name: str
    rows: int
    seconds: list[float]
    rss_mb: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.median_s


def write_clean_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A clean sensor CSV: 1 000 devices, one reading per second, four measurements."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ts = pl.datetime_range(start, start + dt.timedelta(seconds=rows - 1), "1s", eager=True, time_zone="UTC")
    pl.DataFrame(
        {
            "device_id": [f"dev-{i % 1000:04d}" for i in range(rows)],
            "ts": ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temperature_c": np.round(rng.normal(20, 5, rows), 2),
            "humidity_pct": np.round(rng.uniform(20, 80, rows), 1),
            "pressure_hpa": np.round(rng.normal(1013, 5, rows), 1),
            "vibration_g": np.round(rng.uniform(0, 2, rows), 3),
        }
    ).write_csv(path)


def _child(engine: str, csv: Path, db: Path) -> None:
    if engine == "tidegate":
        from flows.files import ingest_paths

        t0 = time.perf_counter()
        report = ingest_paths([csv], db)
        elapsed = time.perf_counter() - t0
        rows = report.accepted
    else:
        import duckdb

        t0 = time.perf_counter()
        con = duckdb.connect(str(db))
        con.execute(f"CREATE TABLE readings AS SELECT * FROM read_csv('{csv}')")
        rows = con.execute("SELECT count(*) FROM readings").fetchone()[0]
        con.close()
        elapsed = time.perf_counter() - t0
    rss_mb = peak_rss_mb()
    print(json.dumps({"seconds": elapsed, "rows": rows, "rss_mb": rss_mb}))


def measure(engine: str, csv: Path, repeats: int) -> Result:
    seconds, rss, rows = [], [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-m", "bench.ingest_csv", "--child", engine, str(csv), str(Path(tmp) / "b.duckdb")],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        seconds.append(data["seconds"])
        rss.append(data["rss_mb"])
        rows = data["rows"]
    return Result(engine, rows, seconds, rss)


def run(rows: int, repeats: int, workdir: Path) -> list[Result]:
    csv = workdir / f"clean_{rows}.csv"
    if not csv.exists():
        write_clean_csv(csv, rows)
    results = []
    # Interleave so both engines see the same machine noise.
    for _ in range(repeats):
        for engine in ("duckdb", "tidegate"):
            r = measure(engine, csv, 1)
            prev = next((x for x in results if x.name == r.name), None)
            if prev:
                prev.seconds += r.seconds
                prev.rss_mb += r.rss_mb
            else:
                results.append(r)
    for r in results:
        if r.rows != rows:
            msg = f"{r.name} loaded {r.rows} rows, expected {rows}"
            raise RuntimeError(msg)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("ENGINE", "CSV", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for r in run(args.rows, args.repeats, Path(tmp)):
            print(f"{r.name:10s} {r.median_s:.3f}s  {r.rows_per_s:,.0f} rows/s  peak RSS {max(r.rss_mb):.0f} MB")


if __name__ == "__main__":
    main()
