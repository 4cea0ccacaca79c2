"""Benchmark (d): which River detector per measurement — precision/recall on the simulator's injected
anomalies and cost per event, all detectors on the same seeded readings in the same run.

    python -m bench.iot_anomaly [--quick]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.connectors.messages import MEASUREMENTS
from models.anomaly import DetectorConfig
from models.anomaly.evaluate import evaluate, simulated

F1_FLOOR = 0.9  # the default detector's spike F1 (a quality floor, not a time)
COST_RATIO_FLOOR = 2.0  # the default must stay at least this much cheaper per event than the rolling Gaussian


def run(quick: bool) -> list[dict[str, Any]]:
    devices, hours = (10, 3) if quick else (50, 12)
    readings, labels = simulated(devices=devices, hours=hours, seed=1)
    names = ("ewz", "sad", "gaussian") if quick else ("ewz", "sad", "gaussian", "hst")
    out: list[dict[str, Any]] = []
    cost: dict[str, float] = {}
    for name in names:
        cfg = DetectorConfig(detectors=dict.fromkeys(MEASUREMENTS, name))
        spike, stuck = evaluate(cfg, readings, labels, name)
        cost[name] = spike.us_per_event
        out.append(
            {
                "name": f"{name}: spikes P {spike.precision:.3f} R {spike.recall:.3f}",
                "metric": f"f1_{name}",
                "value": spike.f1,
                "note": f"{spike.labels} spikes, {stuck.labels} stuck (R {stuck.recall:.2f}); "
                f"{spike.us_per_event:.2f} us/reading (4 measurements), {len(readings):,} readings",
            }
        )
    out.append(
        {
            "name": "cost ratio gaussian / ewz",
            "metric": "ratio_cost",
            "value": cost["gaussian"] / cost["ewz"],
            "note": f"floor {COST_RATIO_FLOOR}x",
        }
    )
    return out


def check(results: list[dict[str, Any]]) -> list[str]:
    fails = []
    for r in results:
        if r["metric"] == "f1_ewz" and r["value"] < F1_FLOOR:
            fails.append(f"iot_anomaly: ewz spike F1 {r['value']:.3f} is under {F1_FLOOR}")
        if r["metric"] == "ratio_cost" and r["value"] < COST_RATIO_FLOOR:
            fails.append(f"iot_anomaly: {r['name']} is {r['value']:.2f}x, under {COST_RATIO_FLOOR}x")
    return fails


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    for r in run(args.quick):
        print(json.dumps(r))


if __name__ == "__main__":
    main()
