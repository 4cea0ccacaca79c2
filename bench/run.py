"""Run the benchmarks and print one table of medians; `--quick` is the CI mode, `--check` enforces ratio floors.

    python -m bench.run [--quick] [--check] [--only NAME]

Every entry measures its engine and a reference in the same run and is judged on their ratio, never on an
absolute time: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import ingest_csv


@dataclass(frozen=True)
class Row:
    bench: str
    name: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Entry:
    name: str
    run: Callable[[bool], tuple[list[Row], list[str]]]  # quick -> (rows, failed floors)


# Floors for the quick mode (200k rows, 3 repeats), set from measurements on the CI-like machine with margin:
# full size (1M rows) tidegate/duckdb was 0.58, quick (200k) 0.37-0.53 depending on load.
INGEST_RATIO_FLOOR = 0.25


def _ingest(quick: bool) -> tuple[list[Row], list[str]]:
    rows, repeats = (200_000, 3) if quick else (1_000_000, 5)
    with tempfile.TemporaryDirectory() as tmp:
        results = {r.name: r for r in ingest_csv.run(rows, repeats, Path(tmp))}
    ours, ref = results["tidegate"], results["duckdb"]
    ratio = ref.median_s / ours.median_s
    out = [
        Row(
            "ingest_csv",
            f"duckdb read_csv load ({rows:,} rows)",
            f"{ref.rows_per_s:,.0f} rows/s",
            f"median {ref.median_s:.3f}s, peak RSS {max(ref.rss_mb):.0f} MB",
        ),
        Row(
            "ingest_csv",
            "tidegate ingest (validated, deduped)",
            f"{ours.rows_per_s:,.0f} rows/s",
            f"median {ours.median_s:.3f}s, peak RSS {max(ours.rss_mb):.0f} MB",
        ),
        Row("ingest_csv", "ratio tidegate / duckdb", f"{ratio:.2f}x", f"floor {INGEST_RATIO_FLOOR}x (quick)"),
    ]
    failed = (
        []
        if not quick or ratio >= INGEST_RATIO_FLOOR
        else [f"ingest_csv: tidegate/duckdb ratio {ratio:.2f} is below the floor {INGEST_RATIO_FLOOR}"]
    )
    return out, failed


_UNITS = {"ev_per_s": " ev/s", "rss_mb": " MB", "kb": " kB", "wall_s": "s"}


def _value(r: dict) -> str:
    metric = r["metric"]
    unit = _UNITS.get(metric, "x" if metric.startswith("ratio") else "")
    return f"{r['value']:,.2f}{unit}"


def _module(name: str) -> Callable[[bool], tuple[list[Row], list[str]]]:
    """An entry from a bench module exposing `run(quick) -> list[dict]` and `check(results) -> list[str]`."""

    def run(quick: bool) -> tuple[list[Row], list[str]]:
        mod = importlib.import_module(f"bench.{name}")
        results = mod.run(quick)
        rows = [Row(name, r["name"], _value(r), r.get("note", "")) for r in results]
        return rows, (mod.check(results) if quick else [])

    return run


ENTRIES = [
    Entry("ingest_csv", _ingest),
    *(
        Entry(name, _module(name))
        for name in ("train_models", "iot_flow", "iot_e2e", "iot_rss", "iot_anomaly", "serve_http", "images_latency")
    ),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small workloads (CI)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a ratio is below its floor")
    ap.add_argument("--only", help="run one entry")
    args = ap.parse_args(argv)
    rows: list[Row] = []
    failed: list[str] = []
    for entry in ENTRIES:
        if args.only and entry.name != args.only:
            continue
        r, f = entry.run(args.quick)
        rows += r
        failed += f
    widths = [max(len(getattr(r, k)) for r in rows) for k in ("bench", "name", "value")]
    for r in rows:
        print(f"{r.bench:{widths[0]}}  {r.name:{widths[1]}}  {r.value:>{widths[2]}}  {r.note}")
    for msg in failed:
        print(f"FAIL {msg}", file=sys.stderr)
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
