"""Benchmark (c): peak RSS of the IoT flow holding 10 000 devices (windows + detectors + the DuckDB sink),
in a fresh child process, beside the same process's RSS after imports only (the baseline) and the same flow
without the DuckDB sink (what the flow's own state and batches cost). Peak = VmHWM (bench/rss.py): it counts
the pages of shared libraries the process touched, as well as its heap.

    python -m bench.iot_rss [--quick]

The workload comes from a separate feeder process (`--feed`: the seeded simulated fleet, one tick at a time)
through a pipe, in frames of up to 2 000 messages, which the measured process drains without blocking, one
batch per source item, as the MQTT source drains its client's buffer. Every message is still decoded,
validated, windowed, scored and stored in the measured process; what moved out is what production does not
have there either: the simulated fleet (~5 MB) and whole ticks of encoded messages (~5 MB), which earlier
versions generated inside the measured process. The MQTT client itself (paho, its buffers, the SQLite
commit probe) is not in the measured process; `flows.iot` imports it only when the flow reads MQTT (~1 MB).

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
a 256 KB block until the next checkpoint (~25 MB over the four tables); smaller checkpoint thresholds (8 MB:
+2 MB, measured again with the feeder), `preserve_insertion_order`, allocator flush thresholds, jemalloc
decay (DUCKDB_JE_MALLOC_CONF), smaller block sizes, glibc `malloc_trim`, `MALLOC_MMAP_THRESHOLD_`,
`MALLOC_ARENA_MAX=1` moved the peak by less than the run-to-run noise or made it worse.
A separate writer process would pay the interpreter, numpy and DuckDB twice (~80 MB for the writer alone).

What the flow's own memory peaked on, and what changed (issue 3, 163.6 -> ~148 MB full mode):
- all 10 000 windows close at the same minute (here: at the end of input): as `WindowAgg` objects they took
  ~15 MB at once; the windows step now hands them over as columns (`ClosedWindows`, ~0.3 KB a window), the
  sink stores those columns as they are, in slices of 1 024 windows (one statement for all: ~6 MB of DuckDB
  working memory, sliced ~3 MB);
- the windows' repeat log (every event time counted in an open window, ~6 MB after 40 s at 10 000 devices)
  is kept as int32 offsets (half), compacted chunk by chunk, and snapshotted without joining it first (the
  join held it twice beside the pickle, once per Bytewax epoch: +11 MB at the 10 s epoch);
- per-device state grows by 1.25x instead of 2x (at 10 000 devices the doubling left ~6 000 empty slots:
  ~2 MB of window cells, ~1 MB of detector state).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from bench.rss import peak_rss_mb

GOAL_MB = 150
BATCH = 2000  # messages per frame (the MQTT source's default `max_batch`)
_START = 1_714_557_600.0


_FRAME = struct.Struct("<I")  # a frame: its length, then one message batch as MessagePack [[topic, payload], ...]


def _feed(devices: int, ticks: int, out: BinaryIO) -> None:
    """The feeder process: the simulated fleet, one tick at a time, as frames of up to `BATCH` messages."""
    from engine.sim import Fleet, FleetConfig

    enc = msgspec.msgpack.Encoder()
    fleet = Fleet(FleetConfig(devices=devices, seed=5, anomaly_rate=0.002, bad_rate=0.01))
    for k in range(ticks):
        msgs = [(m.topic, m.payload) for m in fleet.tick(_START + k)]
        for i in range(0, len(msgs), BATCH):
            frame = enc.encode(msgs[i : i + BATCH])
            out.write(_FRAME.pack(len(frame)) + frame)
    out.flush()


def _child(mode: str, db: str) -> None:
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
    from bytewax.testing import run_main

    from engine.connectors.messages import MessageBatch
    from flows.iot import build_flow, load_config

    class Pipe(StatefulSourcePartition[MessageBatch, int]):
        """Frames from the feeder on stdin, read without blocking (as an MQTT client's buffer is drained):
        at most `BATCH` messages per item, never more than ~1 MB of bytes waiting here."""

        def __init__(self) -> None:
            self.fd = sys.stdin.fileno()
            os.set_blocking(self.fd, False)
            self.buf = bytearray()
            self.eof = False
            self.k = 0
            self.idle = False
            self.dec = msgspec.msgpack.Decoder(list[tuple[str, bytes]])

        def next_batch(self) -> list[MessageBatch]:
            msgs = self._frame()
            if msgs is None and not self.eof:
                try:  # what the pipe holds now, up to one more frame's worth
                    chunk = os.read(self.fd, 1 << 19)
                    self.eof = not chunk
                    self.buf += chunk
                except BlockingIOError:
                    pass
                msgs = self._frame()
            self.idle = msgs is None
            if msgs is None:
                if self.eof:
                    raise StopIteration
                return []
            self.k += 1
            counter[0] += len(msgs)
            return [MessageBatch("bench", msgs, time.time())]

        def _frame(self) -> list[tuple[str, bytes]] | None:
            """The next whole frame in the buffer, decoded (one batch per item, as the MQTT source)."""
            if len(self.buf) < _FRAME.size:
                return None
            (size,) = _FRAME.unpack_from(self.buf)
            end = _FRAME.size + size
            if len(self.buf) < end:
                return None
            with memoryview(self.buf) as view:
                msgs = self.dec.decode(view[_FRAME.size : end])
            del self.buf[:end]
            return msgs

        def next_awake(self) -> dt.datetime | None:
            return dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1) if self.idle else None

        def snapshot(self) -> int:
            return self.k

    class PipeSource(FixedPartitionedSource[MessageBatch, int]):
        def list_parts(self) -> list[str]:
            return ["feeder"]

        def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Pipe:
            return Pipe()

    counter = [0]
    cfg = load_config(None, windows={"length_s": 60.0}, sink={"db": db})
    t0 = time.perf_counter()
    if mode == "flow":
        run_main(build_flow(cfg, source=PipeSource(), alerts=False))
    elif mode == "nostore":  # the same flow without the DuckDB sink: what the state itself costs
        run_main(build_flow(cfg, source=PipeSource(), alerts=False, store=False, extra_sink=_CountSink()))
    rss = peak_rss_mb()
    print(json.dumps({"rss_mb": rss, "events": counter[0], "s": time.perf_counter() - t0}))


class _Count(StatelessSinkPartition[Any]):
    def __init__(self, box: list[int]) -> None:
        self.box = box

    def write_batch(self, items: list[Any]) -> None:
        self.box[0] += len(items)


class _CountSink(DynamicSink[Any]):
    """Counts items (`bench.iot_flow.CountSink`, whose module imports River for its per-event reference)."""

    def __init__(self) -> None:
        self.box = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
        return _Count(self.box)


def measure(mode: str, devices: int, ticks: int) -> dict[str, float]:
    """`mode` in a fresh process, fed by a feeder process through a pipe (none for the baseline)."""
    me = [sys.executable, "-m", "bench.iot_rss"]
    with tempfile.TemporaryDirectory() as tmp:
        child = [*me, "--child", mode, str(Path(tmp) / "r.db")]
        if mode == "baseline":
            out = subprocess.run(child, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True).stdout
        else:
            with subprocess.Popen([*me, "--feed", str(devices), str(ticks)], stdout=subprocess.PIPE) as feeder:
                assert feeder.stdout is not None
                with subprocess.Popen(child, stdin=feeder.stdout, stdout=subprocess.PIPE, text=True) as flow:
                    feeder.stdout.close()  # the child holds the read end: if it dies, the feeder's writes fail
                    out, _ = flow.communicate()
            if flow.returncode or feeder.returncode:
                msg = f"the measured process exited {flow.returncode}, the feeder {feeder.returncode}"
                raise RuntimeError(msg)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


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
    ap.add_argument("--child", nargs=2, metavar=("MODE", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--feed", nargs=2, type=int, metavar=("DEVICES", "TICKS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.feed:
        _feed(*args.feed, sys.stdout.buffer)
        return
    for r in run(args.quick):
        print(json.dumps(r))


if __name__ == "__main__":
    main()
