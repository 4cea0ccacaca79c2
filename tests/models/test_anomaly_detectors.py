"""Anomaly detection on the simulator's injected anomalies: accuracy floors, River API, bounded state."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.connectors.messages import MEASUREMENTS
from engine.schema import SensorReading
from models.anomaly import DetectorConfig, EWZScore, ShardDetectors
from models.anomaly.evaluate import evaluate, simulated


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
