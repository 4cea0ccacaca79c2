"""Benchmark (c): peak RSS of the IoT flow holding 10 000 devices (windows + detectors + the DuckDB sink),
in a fresh child process, beside the same process's RSS after imports only (the baseline) and the same flow
without the DuckDB sink (what the flow's own state and batches cost). Peak = VmHWM (bench/rss.py): it counts
the pages of shared libraries the process touched, as well as its heap.

    python -m bench.iot_rss [--quick]

Where the sink's share (peak with the sink minus peak without) goes, measured step by step with VmRSS
(issue 3; DuckDB 2.0.1, one core's settings from `SinkConfig`):
- ~24 MB opening the connection (about 18 MB of them pages of DuckDB's 68 MB library, touched while it
  registers its ~3 300 functions; the rest its catalog), 3 MB `SET TimeZone` (ICU's data, needed by the
  TIMESTAMP -> TIMESTAMPTZ cast anyway), ~3 MB creating the tables;
- ~7 MB more library pages on the first writes (scan, insert, anti-join, checkpoint code);
- the buffer pool, bounded by `SinkConfig.duckdb_memory_mb` (32), and ~8 MB peaks while DuckDB checkpoints
  (every 16 MB of WAL).
The sink hands DuckDB numpy columns, which it scans in place: the flow process loads neither polars
(~23 MB) nor pyarrow (~40 MB), as it did when the sink built polars frames and handed them over as Arrow.
Settings that were measured and left: a smaller `memory_limit` saves a few MB but 16 MB fails a checkpoint
(FATAL, database invalidated) within minutes at 10 000 devices, because every column being appended to pins
a 256 KB block until the next checkpoint (~25 MB over the four tables); smaller checkpoint thresholds,
`preserve_insertion_order`, allocator flush thresholds, jemalloc decay (DUCKDB_JE_MALLOC_CONF), smaller
block sizes and glibc `malloc_trim` moved the peak by less than the run-to-run noise or made it worse.
A separate writer process would pay the interpreter, numpy and DuckDB twice (~80 MB for the writer alone).
The workload generator lives in the measured process too: the simulated fleet (~5 MB) and one tick of
encoded messages (~5 MB, a fair stand-in for what the MQTT client buffers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rss import peak_rss_mb

GOAL_MB = 150


def _child(mode: str, devices: int, ticks: int, db: str) -> None:
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
    from bytewax.testing import run_main

    from engine.connectors.messages import MessageBatch
    from engine.sim import Fleet, FleetConfig
    from flows.iot import build_flow, load_config

    class Ticks(StatefulSourcePartition[MessageBatch, int]):
        """Generates one tick of the fleet per batch, so the workload itself is not held in memory."""

        def __init__(self) -> None:
            self.fleet = Fleet(FleetConfig(devices=devices, seed=5, anomaly_rate=0.002, bad_rate=0.01))
            self.k = 0
            self.sent = 0

        def next_batch(self) -> list[MessageBatch]:
            if self.k >= ticks:
                raise StopIteration
            msgs = [(m.topic, m.payload) for m in self.fleet.tick(1_714_557_600.0 + self.k)]
            self.k += 1
            counter[0] += len(msgs)
            return [MessageBatch("bench", msgs[i : i + 2000], time.time()) for i in range(0, len(msgs), 2000)]

        def snapshot(self) -> int:
            return self.k

    class TickSource(FixedPartitionedSource[MessageBatch, int]):
        def list_parts(self) -> list[str]:
            return ["ticks"]

        def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Ticks:
            return Ticks()

    counter = [0]
    cfg = load_config(None, windows={"length_s": 60.0}, sink={"db": db})
    t0 = time.perf_counter()
    if mode == "flow":
        run_main(build_flow(cfg, source=TickSource(), alerts=False))
    elif mode == "nostore":  # the same flow without the DuckDB sink: what the state itself costs
        from bench.iot_flow import CountSink

        run_main(build_flow(cfg, source=TickSource(), alerts=False, store=False, extra_sink=CountSink()))
    rss = peak_rss_mb()
    print(json.dumps({"rss_mb": rss, "events": counter[0], "s": time.perf_counter() - t0}))


def measure(mode: str, devices: int, ticks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "bench.iot_rss", "--child", mode, str(devices), str(ticks), str(Path(tmp) / "r.db")],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool) -> list[dict[str, Any]]:
    devices, ticks = (10_000, 10) if quick else (10_000, 40)
    base = measure("baseline", devices, ticks)
    bare = measure("nostore", devices, ticks)
    full = measure("flow", devices, ticks)
    return [
        {"name": "RSS after imports (baseline)", "metric": "rss_mb", "value": base["rss_mb"], "note": ""},
        {
            "name": f"peak RSS without the DuckDB sink, {devices:,} devices",
            "metric": "rss_mb",
            "value": bare["rss_mb"],
            "note": f"{int(bare['events']):,} events through windows and detectors",
        },
        {
            "name": f"peak RSS, {devices:,} devices",
            "metric": "rss_mb",
            "value": full["rss_mb"],
            "note": f"{int(full['events']):,} events through windows, detectors and DuckDB; goal <= {GOAL_MB} MB",
        },
        {
            "name": "the DuckDB sink's share (peak with it minus peak without)",
            "metric": "rss_mb",
            "value": full["rss_mb"] - bare["rss_mb"],
            "note": "",
        },
        {"name": "state per device", "metric": "kb", "value": (full["rss_mb"] - base["rss_mb"]) * 1024 / devices},
    ]


def check(results: list[dict[str, Any]]) -> list[str]:
    return []  # reported, not gated: RSS depends on the allocator and library versions more than on our code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "DEVICES", "TICKS", "DB"))
    args = ap.parse_args()
    if args.child:
        mode, devices, ticks, db = args.child
        _child(mode, int(devices), int(ticks), db)
        return
    for r in run(args.quick):
        print(json.dumps(r))


if __name__ == "__main__":
    main()
