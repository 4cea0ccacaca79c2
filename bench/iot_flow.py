"""Benchmark (a): the IoT flow's own throughput, from an in-memory source of pre-encoded MQTT messages (no
broker, no storage), against plain Python loops doing the same decode + validate + window + detector work
on one core, in the same run.

Two references:
- *vectorised loop* (the gated ratio): the same batch functions the flow runs (`decode_batch`, the shard
  split, `ShardWindows.add`, `ShardDetectors.process`, a tick every 10 batches), called in a plain loop.
  flow / loop is what Bytewax costs around the same work.
- *per-event loop* (reported): the same work one message at a time, as the flow did before it was
  vectorised: `decode_reading` per message, `ReferenceWindows` (the per-event window spec) and
  `ReferenceDetectors` (River's EWMean/EWVar per reading: the previous implementation, kept as the spec).

    python -m bench.iot_flow [--quick] [--batch N] [--extra-keys]

The whole benchmark runs pinned to one CPU (the lowest this process may use; restored afterwards): "per
process, on one core" as the issue states it, and on a 2-core VM the unpinned numbers moved by +-10% with
the scheduler's migrations (and numpy's BLAS helper threads) from run to run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
import zlib
from collections.abc import Iterator
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from engine.connectors.decode import decode_batch, decode_reading
from engine.connectors.memory import MemorySource, batched
from engine.connectors.messages import MessageBatch
from engine.connectors.windows import ShardWindows
from engine.connectors.windows_ref import ReferenceWindows
from engine.schema import SensorReading
from engine.sim import Fleet, FleetConfig
from flows.iot import IotConfig, Sharder, build_flow, load_config, shard_count
from models.anomaly import DetectorConfig, ShardDetectors
from models.anomaly.stream_ref import ReferenceDetectors

RATIO_FLOOR = 0.33  # the goal, flow vs the vectorised loop
GOAL_EV_S = 1_000_000  # the goal per process (reported: it depends on the machine)
BATCH = 2000  # messages per source item (the MQTT source's default `max_batch`)


def workload(
    devices: int, ticks: int, seed: int = 5, batch: int = BATCH, extra_keys: bool = False
) -> list[list[tuple[str, bytes]]]:
    """The simulated fleet's messages in batches. `extra_keys`: every payload that is an object also carries two
    keys the schema does not know (firmware version, sequence number), as many fleets' payloads do."""
    fleet = Fleet(FleetConfig(devices=devices, rate_hz=1.0, seed=seed, anomaly_rate=0.002, bad_rate=0.01))
    msgs = [(m.topic, m.payload) for m in fleet.run(1_714_557_600.0, ticks)]
    if extra_keys:
        tail = b',"fw":"2.4.1","seq":%d}'
        msgs = [(t, p[:-1] + tail % i if p.endswith(b"}") else p) for i, (t, p) in enumerate(msgs)]
    return batched(msgs, batch)


def vector_loop(batches: list[list[tuple[str, bytes]]], cfg: IotConfig) -> int:
    """decode + validate, shard, window, detect: the flow's batch functions with no engine around them."""
    shards = shard_count(cfg)
    wins = {str(i): ShardWindows(cfg.windows) for i in range(shards)}
    dets = {str(i): ShardDetectors(cfg.detect) for i in range(shards)}
    split = Sharder(shards)
    out = 0
    for k, msgs in enumerate(batches):
        now = time.time()
        readings, dead = decode_batch(MessageBatch("bench", msgs, now))
        for key, rows in split((readings, dead, now)):
            accepted, late, _dups, closed = wins[key].add(rows, now)
            found = dets[key].process(accepted)
            out += len(accepted) + len(late) + len(closed) + len(found)
        out += len(dead)
        if k % 10 == 0:
            for w in wins.values():
                out += len(w.close_due(now))
    for w in wins.values():
        out += len(w.close_all(time.time()))
    return out


def event_loop(batches: list[list[tuple[str, bytes]]], cfg: IotConfig) -> int:
    """The same work one message at a time (per-record decode, per-event windows, River detectors)."""
    shards = shard_count(cfg)
    wins = {str(i): ReferenceWindows(cfg.windows) for i in range(shards)}
    dets = {str(i): ReferenceDetectors(cfg.detect) for i in range(shards)}
    cache: dict[str, str] = {}
    out = 0
    for k, msgs in enumerate(batches):
        now = time.time()
        groups: dict[str, list[SensorReading]] = {}
        for _topic, payload in msgs:
            r = decode_reading(payload)
            if not isinstance(r, SensorReading):
                out += 1
                continue
            key = cache.get(r.device_id)
            if key is None:
                key = cache[r.device_id] = str(zlib.crc32(r.device_id.encode()) % shards)
            groups.setdefault(key, []).append(r)
        for key, rows in groups.items():
            accepted, late, _dups, closed = wins[key].add(rows, now)
            found = dets[key].process(accepted)
            out += len(accepted) + len(late) + len(closed) + len(found)
        if k % 10 == 0:
            for w in wins.values():
                out += len(w.close_due(now))
    for w in wins.values():
        out += len(w.close_all(time.time()))
    return out


class _Count(StatelessSinkPartition[Any]):
    def __init__(self, box: list[int]) -> None:
        self.box = box

    def write_batch(self, items: list[Any]) -> None:
        self.box[0] += len(items)


class CountSink(DynamicSink[Any]):
    def __init__(self) -> None:
        self.box = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
        return _Count(self.box)


def flow_once(batches: list[list[tuple[str, bytes]]], cfg: IotConfig) -> float:
    flow = build_flow(cfg, source=MemorySource(batches), store=False, alerts=False, extra_sink=CountSink())
    t0 = time.perf_counter()
    run_main(flow)
    return time.perf_counter() - t0


def loop_once(batches: list[list[tuple[str, bytes]]], cfg: IotConfig, loop: Any = vector_loop) -> float:
    t0 = time.perf_counter()
    loop(batches, cfg)
    return time.perf_counter() - t0


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """This thread (and the threads it starts) on one CPU for the duration."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run(
    quick: bool, batch: int = BATCH, devices: int = 1000, shards: int | None = None, extra_keys: bool = False
) -> list[dict[str, Any]]:
    with one_core():
        return _run(quick, batch, devices, shards, extra_keys)


def _run(quick: bool, batch: int, devices: int, shards: int | None, extra_keys: bool) -> list[dict[str, Any]]:
    ticks, repeats = (60, 3) if quick else (300, 5)
    batches = workload(devices, ticks, batch=batch, extra_keys=extra_keys)
    n = sum(len(b) for b in batches)
    results: list[dict[str, Any]] = []
    count = shards or shard_count(load_config(None))
    size = f"{n:,} msgs, {devices:,} devices, batches of {batch:,}, {count} shard{'s' * (count > 1)}"
    if extra_keys:
        size += ", 2 keys beyond the schema's in every payload"
    for label, detect in (("", DetectorConfig()), (" (detectors off)", DetectorConfig(detectors={}))):
        knobs: dict[str, Any] = {"length_s": 60.0, "allowed_lateness_s": 5.0}
        if shards is not None:
            knobs["shards"] = shards
        cfg = load_config(None, windows=knobs)
        cfg = IotConfig(mqtt=cfg.mqtt, windows=cfg.windows, detect=detect, sink=cfg.sink, alerts=cfg.alerts)
        flow_s, loop_s, event_s = [], [], []
        for i in range(repeats):
            loop_s.append(loop_once(batches, cfg))
            flow_s.append(flow_once(batches, cfg))
            if i < 3:  # the per-event loop is ~10x slower: three runs
                event_s.append(loop_once(batches, cfg, event_loop))
        f, p, e = statistics.median(flow_s), statistics.median(loop_s), statistics.median(event_s)
        suffix = "" if not label else "_nodetect"
        results += [
            {
                "name": f"bytewax flow{label}",
                "metric": "ev_per_s",
                "value": n / f,
                "note": f"{size}, {f:.3f}s; goal {GOAL_EV_S:,} ev/s",
            },
            {"name": f"vectorised loop{label}", "metric": "ev_per_s", "value": n / p, "note": f"{p:.3f}s, one core"},
            {"name": f"per-event loop{label}", "metric": "ev_per_s", "value": n / e, "note": f"{e:.3f}s, one core"},
            {
                "name": f"ratio flow / vectorised loop{label}",
                "metric": f"ratio_flow_loop{suffix}",
                "value": p / f,
                "note": f"floor {RATIO_FLOOR}x",
            },
            {
                "name": f"ratio flow / per-event loop{label}",
                "metric": f"ratio_flow_event_loop{suffix}",
                "value": e / f,
                "note": "reported",
            },
        ]
    return results


def check(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"iot_flow: {r['name']} is {r['value']:.2f}x, under the floor {RATIO_FLOOR}x"
        for r in results
        if r["metric"].startswith("ratio_flow_loop") and r["value"] < RATIO_FLOOR
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=BATCH, help="messages per source item")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--shards", type=int, help="keyed states for windows and detectors (default: the config's)")
    ap.add_argument("--extra-keys", action="store_true", help="good payloads carry 2 keys the schema does not know")
    args = ap.parse_args()
    results = run(args.quick, args.batch, args.devices, args.shards, args.extra_keys)
    for r in results:
        print(json.dumps(r))
    raise SystemExit(1 if check(results) else 0)


if __name__ == "__main__":
    main()
