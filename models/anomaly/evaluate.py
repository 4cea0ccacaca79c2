"""Score detectors on the simulator's injected anomalies: precision, recall and cost per event.

Readings go in batches of 1000 in arrival order (as the flow's `detect` step sees them). A flagged spike
is a true positive when a spike label has the same device, measurement and timestamp; a
flagged stuck reading when it falls inside a stuck label of that device and measurement. Recall counts
labels found (a stuck episode is found once any reading in it is flagged). Cost is the detect step's time
per reading, measured on the same readings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.connectors.decode import decode_batch
from engine.connectors.messages import MEASUREMENTS, MessageBatch, Readings
from engine.schema import SensorReading
from engine.sim import Fleet, FleetConfig, Label
from models.anomaly.stream import DetectorConfig, ShardDetectors


@dataclass(frozen=True)
class Score:
    name: str
    kind: str
    precision: float
    recall: float
    flagged: int
    labels: int
    us_per_event: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def simulated(devices: int = 20, hours: float = 6.0, seed: int = 1, anomaly_rate: float = 0.002, rate_hz: float = 0.2):
    """(readings in arrival order, labels) from a seeded fleet (no malformed or late messages)."""
    fleet = Fleet(FleetConfig(devices=devices, rate_hz=rate_hz, seed=seed, anomaly_rate=anomaly_rate))
    msgs = fleet.run(1_700_000_000.0, int(hours * 3600 * rate_hz))
    readings, _ = decode_batch(MessageBatch("sim", [(m.topic, m.payload) for m in msgs], 0.0))
    return readings.rows, fleet.labels


def evaluate(cfg: DetectorConfig, readings: Sequence[SensorReading], labels: Sequence[Label], name: str) -> list[Score]:
    det = ShardDetectors(cfg)
    step = 1000
    batches = [Readings.from_rows(list(readings[i : i + step])) for i in range(0, len(readings), step)]
    t0 = time.perf_counter()
    found = []
    for batch in batches:
        found.extend(det.process(batch))
    cost = (time.perf_counter() - t0) / max(len(readings), 1) * 1e6
    spikes = {(lb.device_id, lb.measurement, round(lb.start, 3)) for lb in labels if lb.kind == "spike"}
    stuck = [lb for lb in labels if lb.kind == "stuck"]
    out = []
    flagged_spikes = [a for a in found if a.kind == "spike"]
    hits = {(a.device_id, a.measurement, round(a.ts.timestamp(), 3)) for a in flagged_spikes} & spikes
    tp = sum((a.device_id, a.measurement, round(a.ts.timestamp(), 3)) in spikes for a in flagged_spikes)
    out.append(_score(name, "spike", tp, len(flagged_spikes), len(hits), len(spikes), cost))
    flagged_stuck = [a for a in found if a.kind == "stuck"]
    by_key: dict[tuple[str, str], list[Label]] = {}
    for lb in stuck:
        by_key.setdefault((lb.device_id, lb.measurement), []).append(lb)
    tp = 0
    found_labels: set[Label] = set()
    for a in flagged_stuck:
        t = a.ts.timestamp()
        for lb in by_key.get((a.device_id, a.measurement), []):
            if lb.start - 1e-3 <= t <= lb.end + 1e-3:
                tp += 1
                found_labels.add(lb)
                break
    out.append(_score(name, "stuck", tp, len(flagged_stuck), len(found_labels), len(stuck), cost))
    return out


def _score(name: str, kind: str, tp: int, flagged: int, found: int, labels: int, cost: float) -> Score:
    return Score(
        name=name,
        kind=kind,
        precision=tp / flagged if flagged else 1.0,
        recall=found / labels if labels else 1.0,
        flagged=flagged,
        labels=labels,
        us_per_event=round(cost, 3),
    )


def compare(names: Sequence[str] = ("ewz", "sad", "gaussian", "hst"), **sim: float) -> list[Score]:
    readings, labels = simulated(**sim)  # type: ignore[arg-type]
    out = []
    for name in names:
        cfg = DetectorConfig(detectors=dict.fromkeys(MEASUREMENTS, name))
        out.extend(evaluate(cfg, readings, labels, name))
    return out
