"""Benchmark (a): the IoT flow's own throughput, from an in-memory source of pre-encoded MQTT messages (no
broker, no storage), against a plain Python loop doing the same decode + validate + window + detector
work on one core, in the same run. Both call the same functions; the ratio is what Bytewax costs.

    python -m bench.iot_flow [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from engine.connectors.decode import decode_batch
from engine.connectors.memory import MemorySource, batched
from engine.connectors.messages import MessageBatch
from engine.connectors.windows import ShardWindows
from engine.schema import SensorReading
from engine.sim import Fleet, FleetConfig
from flows.iot import IotConfig, build_flow, load_config
from models.anomaly import DetectorConfig, ShardDetectors

RATIO_FLOOR = 0.33  # the goal; measured 0.8-0.9 on a 2-core box
BATCH = 2000


def workload(devices: int, ticks: int, seed: int = 5) -> list[list[tuple[str, bytes]]]:
    fleet = Fleet(FleetConfig(devices=devices, rate_hz=1.0, seed=seed, anomaly_rate=0.002, bad_rate=0.01))
    msgs = fleet.run(1_714_557_600.0, ticks)
    return batched([(m.topic, m.payload) for m in msgs], BATCH)


def plain_loop(batches: list[list[tuple[str, bytes]]], cfg: IotConfig) -> int:
    """decode + validate, shard, window, detect: the flow's work with no engine around it."""
    shards = cfg.windows.shards
    wins = {str(i): ShardWindows(cfg.windows) for i in range(shards)}
    dets = {str(i): ShardDetectors(cfg.detect) for i in range(shards)}
    cache: dict[str, str] = {}
    out = 0
    for k, msgs in enumerate(batches):
        now = time.time()
        readings, dead = decode_batch(MessageBatch("bench", msgs, now))
        groups: dict[str, list[SensorReading]] = {}
        for r in readings:
            key = cache.get(r.device_id)
            if key is None:
                key = cache[r.device_id] = str(zlib.crc32(r.device_id.encode()) % shards)
            groups.setdefault(key, []).append(r)
        for key, rows in groups.items():
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


def loop_once(batches: list[list[tuple[str, bytes]]], cfg: IotConfig) -> float:
    t0 = time.perf_counter()
    plain_loop(batches, cfg)
    return time.perf_counter() - t0


def run(quick: bool) -> list[dict[str, Any]]:
    devices, ticks, repeats = (1000, 60, 3) if quick else (1000, 300, 5)
    batches = workload(devices, ticks)
    n = sum(len(b) for b in batches)
    results: list[dict[str, Any]] = []
    for label, detect in (("", DetectorConfig()), (" (detectors off)", DetectorConfig(detectors={}))):
        cfg = load_config(None, windows={"length_s": 60.0, "allowed_lateness_s": 5.0})
        cfg = IotConfig(mqtt=cfg.mqtt, windows=cfg.windows, detect=detect, sink=cfg.sink, alerts=cfg.alerts)
        flow_s, loop_s = [], []
        for _ in range(repeats):
            loop_s.append(loop_once(batches, cfg))
            flow_s.append(flow_once(batches, cfg))
        f, p = statistics.median(flow_s), statistics.median(loop_s)
        results += [
            {"name": f"bytewax flow{label}", "metric": "ev_per_s", "value": n / f, "note": f"{n:,} msgs, {f:.3f}s"},
            {"name": f"plain loop{label}", "metric": "ev_per_s", "value": n / p, "note": f"{p:.3f}s, one core"},
            {
                "name": f"ratio flow / loop{label}",
                "metric": "ratio_flow_loop" if not label else "ratio_flow_loop_nodetect",
                "value": p / f,
                "note": f"floor {RATIO_FLOOR}x",
            },
        ]
    return results


def check(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"iot_flow: {r['name']} is {r['value']:.2f}x, under the floor {RATIO_FLOOR}x"
        for r in results
        if r["metric"].startswith("ratio") and r["value"] < RATIO_FLOOR
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    results = run(args.quick)
    for r in results:
        print(json.dumps(r))
    raise SystemExit(1 if check(results) else 0)


if __name__ == "__main__":
    main()
