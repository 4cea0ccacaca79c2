"""Anomaly detection on the simulator's injected anomalies: accuracy floors, River API, bounded state."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys

import pytest

from engine.connectors.messages import MEASUREMENTS, Anomaly
from engine.schema import SensorReading
from models.anomaly import DetectorConfig, EWZScore, ShardDetectors
from models.anomaly.evaluate import evaluate, simulated
from models.anomaly.stream_ref import ReferenceDetectors


@pytest.fixture(scope="module")
def sim() -> tuple[list[SensorReading], list]:
    return simulated(devices=10, hours=4, seed=11)


def test_default_detector_finds_injected_spikes_and_stuck_sensors(sim: tuple) -> None:
    readings, labels = sim
    spike, stuck = evaluate(DetectorConfig(), readings, labels, "ewz")
    assert spike.labels >= 20 and stuck.labels >= 5
    assert spike.recall >= 0.85 and spike.precision >= 0.9, spike
    assert stuck.recall >= 0.95 and stuck.precision >= 0.95, stuck


def test_the_global_mean_detector_misses_spikes_on_a_daily_cycle(sim: tuple) -> None:
    """Why not River's StandardAbsoluteDeviation: its mean and variance span the whole day."""
    readings, labels = sim
    ewz, _ = evaluate(DetectorConfig(), readings, labels, "ewz")
    sad, _ = evaluate(DetectorConfig(detectors=dict.fromkeys(MEASUREMENTS, "sad")), readings, labels, "sad")
    assert sad.recall < ewz.recall


def test_ewz_follows_the_river_verbs_and_ignores_warmup() -> None:
    det = EWZScore(fading_factor=0.1, min_std=0.1, warmup=5)
    for y in [10.0, 10.2, 9.9, 10.1, 10.0]:
        assert det.score_one(None, y) == 0.0
        det.learn_one(None, y)
    assert det.score_one(None, 10.05) < 2 < 20 < det.score_one(None, 15.0)
    assert det.clone().n == 0  # River's clone: same parameters, fresh state


def test_a_level_shift_is_followed_after_patience() -> None:
    cfg = DetectorConfig(warmup=10, patience=3)
    det = ShardDetectors(cfg)
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    rows = [
        SensorReading(device_id="d", ts=t0 + dt.timedelta(seconds=i), temperature_c=(20 if i < 40 else 30) + i % 3 / 10)
        for i in range(80)
    ]
    found = det.process(rows)
    spikes = [a for a in found if a.kind == "spike"]
    assert 1 <= len(spikes) <= cfg.patience + 2  # flagged at the jump, then learned as the new level


def test_devices_not_seen_for_their_ttl_are_forgotten() -> None:
    det = ShardDetectors(DetectorConfig())
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    det.process([SensorReading(device_id=f"d{i}", ts=t0, temperature_c=20.0) for i in range(100)])
    det.process([SensorReading(device_id="d0", ts=t0 + dt.timedelta(hours=2), temperature_c=20.0)])
    assert det.expire((t0 + dt.timedelta(hours=1)).timestamp()) == 99
    assert list(det.devices) == ["d0"]
    again = ShardDetectors.restore(DetectorConfig(), det.snapshot())
    assert list(again.devices) == ["d0"]


def _key(a: Anomaly) -> tuple:
    return (a.device_id, a.ts, a.measurement, a.kind, a.value, a.score, a.expected, a.detector)


# numpy rounds over every slot in place; rounds over the batch's devices gathered (issue 3: a batch that
# covers few of the shard's devices); the Python loop
@pytest.mark.parametrize(("devices", "batch", "hours"), [(40, 2000, 3), (100, 60, 0.5), (6, 500, 12)])
def test_numpy_ewz_flags_what_the_river_ewz_flags(devices: int, batch: int, hours: float) -> None:
    """The vectorised `ewz` against the River version one reading at a time (River's EWMean/EWVar, the
    per-event reference), on a seeded simulated stream with spikes and stuck sensors: the same anomalies,
    to the bit (value, score, expected); and the River form inside ShardDetectors (`ewz-river`) too."""
    readings, labels = simulated(devices=devices, hours=hours, seed=7, anomaly_rate=0.01)
    fast = ShardDetectors(DetectorConfig())
    reference = ReferenceDetectors(DetectorConfig())
    river = ShardDetectors(DetectorConfig(detectors=dict.fromkeys(MEASUREMENTS, "ewz-river")))
    got, want, also = [], [], []
    for i in range(0, len(readings), batch):
        chunk = readings[i : i + batch]
        got += fast.process(chunk)
        want += reference.process(chunk)
        also += river.process(chunk)
    assert len(labels) > 20 and {a.kind for a in want} == {"spike", "stuck"}
    assert sorted(map(_key, got)) == sorted(map(_key, want))
    assert sorted(_key(a)[:-1] for a in also) == sorted(_key(a)[:-1] for a in want)
    assert len(got) > 30


def test_the_default_path_does_not_import_river() -> None:
    code = (
        "import sys, flows.iot; from models.anomaly import ShardDetectors, DetectorConfig;"
        "ShardDetectors(DetectorConfig()).process([]); assert 'river' not in sys.modules, 'river'; "
        "assert 'scipy' not in sys.modules, 'scipy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("devices", [30, 3])
def test_numpy_ewz_follows_a_level_shift_like_river(devices: int) -> None:
    """Consecutive spikes up to `patience`, then learning the new level; repeats; absent values."""
    cfg = DetectorConfig(warmup=10, patience=3, stuck_after=6)
    rng = random.Random(devices)
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(120):
        for d in range(devices):
            level = 20 if i < 40 + d else 30
            temp = round(level + rng.gauss(0, 0.2), 1) if not 70 <= i < 80 else 25.0  # then stuck
            hum = None if rng.random() < 0.1 else round(50 + rng.gauss(0, 1), 2)
            rows.append(
                SensorReading(device_id=f"d{d}", ts=t0 + dt.timedelta(seconds=i), temperature_c=temp, humidity_pct=hum)
            )
    fast = ShardDetectors(cfg)
    reference = ReferenceDetectors(cfg)
    got, want = [], []
    for i in range(0, len(rows), 700):
        got += fast.process(rows[i : i + 700])
        want += reference.process(rows[i : i + 700])
        fast = ShardDetectors.restore(cfg, fast.snapshot())  # a resume between batches changes nothing
    assert sum(a.kind == "spike" for a in want) >= 3 * devices and sum(a.kind == "stuck" for a in want) >= devices
    assert sorted(map(_key, got)) == sorted(map(_key, want))
