"""A seeded fleet of sensor devices: each has a daily temperature cycle, humidity that follows it,
slowly varying pressure, vibration noise, sensor noise and a slow drift. On top, with given rates:
anomalies (a *spike* on one measurement for one reading; a *stuck* sensor repeating one value for 20–40
readings), malformed messages (each kind maps to one reject reason) and late readings (valid, but with a
timestamp far behind the device's clock). Every message carries its ground truth (`SimMessage.kind`,
`Fleet.labels`), so tests and the anomaly evaluation can check the far end.

Pure generation: time comes in as an argument (`Fleet.tick(t)`); pacing and publishing live in
`engine.sim.publish`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec

from engine.validation import rules

DAY_S = 86400.0
# kind of malformed message -> the reject reason the validator gives it
BAD_KINDS: dict[str, str] = {
    "truncated_json": rules.BAD_JSON,
    "out_of_range": rules.OUT_OF_RANGE,
    "missing_device": rules.MISSING_FIELD,
    "bad_timestamp": rules.BAD_TYPE,
    "not_an_object": rules.NOT_AN_OBJECT,
}
STUCK_MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa")
SPIKE_MEASUREMENTS = ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_g")
# sensor noise (one standard deviation) per measurement
NOISE = {"temperature_c": 0.15, "humidity_pct": 0.4, "pressure_hpa": 0.08, "vibration_g": 0.02}
_RANGES = {"temperature_c": (-40, 125), "humidity_pct": (0, 100), "pressure_hpa": (300, 1100), "vibration_g": (0, 16)}
_ROUND = {"temperature_c": 3, "humidity_pct": 2, "pressure_hpa": 2, "vibration_g": 4}
_ENC = msgspec.json.Encoder()


@dataclass(frozen=True)
class FleetConfig:
    devices: int = 10
    rate_hz: float = 1.0  # readings per second per device
    seed: int = 0
    anomaly_rate: float = 0.0  # per reading: chance a spike or a stuck episode starts
    bad_rate: float = 0.0  # per message: chance it is malformed
    late_rate: float = 0.0  # per message: chance it is a valid reading with an old timestamp
    late_by_s: float = 120.0  # how far behind a late reading's timestamp is
    topic: str = "sensors/{device_id}"
    prefix: str = "dev"


class SimMessage(NamedTuple):
    topic: str
    payload: bytes
    kind: str  # 'good' | 'spike' | 'stuck' | 'late' | a BAD_KINDS key
    device_id: str
    ts: float


class Label(NamedTuple):
    """Ground truth for one injected anomaly: a spike has start == end."""

    device_id: str
    measurement: str
    kind: str
    start: float
    end: float


@dataclass
class _Device:
    device_id: str
    base_temp: float
    amp: float
    phase: float
    base_hum: float
    base_press: float
    press_phase: float
    base_vib: float
    drift_per_day: float
    offset_ms: int
    stuck: dict[str, tuple[float, int]] = field(default_factory=dict)  # measurement -> (value, readings left)


class Fleet:
    """`tick(t)` -> one message per device for event time `t` (epoch seconds)."""

    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        rng = self.rng
        width = max(4, len(str(cfg.devices - 1)))
        self.devices = [
            _Device(
                device_id=f"{cfg.prefix}-{i:0{width}d}",
                base_temp=rng.uniform(18, 26),
                amp=rng.uniform(1, 4),
                phase=rng.uniform(0, 2 * math.pi),
                base_hum=rng.uniform(35, 60),
                base_press=rng.uniform(1005, 1020),
                press_phase=rng.uniform(0, 2 * math.pi),
                base_vib=rng.uniform(0.05, 0.3),
                drift_per_day=rng.uniform(-0.5, 0.5),
                offset_ms=rng.randrange(0, 1000),
            )
            for i in range(cfg.devices)
        ]
        self.labels: list[Label] = []
        self.counts: dict[str, int] = {}
        self.t0: float | None = None
        self._seq = 0

    def truth(self, d: _Device, t: float) -> dict[str, float]:
        if self.t0 is None:
            self.t0 = t
        days = (t - self.t0) / DAY_S
        cycle = math.sin(2 * math.pi * (t % DAY_S) / DAY_S + d.phase)
        temp = d.base_temp + d.amp * cycle + d.drift_per_day * days
        return {
            "temperature_c": temp,
            "humidity_pct": d.base_hum - 1.5 * (temp - d.base_temp),
            "pressure_hpa": d.base_press + 2.0 * math.sin(2 * math.pi * t / (6 * 3600) + d.press_phase),
            "vibration_g": d.base_vib,
        }

    def _values(self, d: _Device, t: float) -> tuple[dict[str, float], str]:
        rng = self.rng
        values = {m: v + rng.gauss(0, NOISE[m]) for m, v in self.truth(d, t).items()}
        kind = "good"
        for m, (value, left) in list(d.stuck.items()):
            values[m] = value
            kind = "stuck"
            if left <= 1:
                del d.stuck[m]
            else:
                d.stuck[m] = (value, left - 1)
        if kind == "good" and self.cfg.anomaly_rate and rng.random() < self.cfg.anomaly_rate:
            if rng.random() < 0.7:
                m = rng.choice(SPIKE_MEASUREMENTS)
                values[m] += rng.choice((-1, 1)) * rng.uniform(8, 20) * NOISE[m]
                kind = "spike"
                self.labels.append(Label(d.device_id, m, "spike", t, t))
            else:
                m = rng.choice(STUCK_MEASUREMENTS)
                n = rng.randint(20, 40)
                value = round(values[m], _ROUND[m])
                values[m] = value
                d.stuck[m] = (value, n - 1)
                kind = "stuck"
                self.labels.append(Label(d.device_id, m, "stuck", t, t + (n - 1) / self.cfg.rate_hz + 1e-3))
        out = {}
        for m, v in values.items():
            lo, hi = _RANGES[m]
            out[m] = round(min(max(v, lo), hi), _ROUND[m])
        return out, kind

    def tick(self, t: float) -> list[SimMessage]:
        cfg = self.cfg
        rng = self.rng
        out: list[SimMessage] = []
        for d in self.devices:
            ts = t + d.offset_ms / 1000.0 / max(cfg.rate_hz, 1.0)
            topic = cfg.topic.format(device_id=d.device_id)
            r = rng.random()
            if cfg.bad_rate and r < cfg.bad_rate:
                kind = rng.choice(list(BAD_KINDS))
                out.append(SimMessage(topic, self._bad(kind, d, ts), kind, d.device_id, ts))
            elif cfg.late_rate and r < cfg.bad_rate + cfg.late_rate:
                late_ts = ts - cfg.late_by_s + 0.001  # never the key of a reading on time (ms precision)
                values = {m: round(v, _ROUND[m]) for m, v in self.truth(d, late_ts).items()}
                out.append(SimMessage(topic, _payload(d.device_id, late_ts, values), "late", d.device_id, late_ts))
            else:
                values, kind = self._values(d, ts)
                out.append(SimMessage(topic, _payload(d.device_id, ts, values), kind, d.device_id, ts))
        for m in out:
            self.counts[m.kind] = self.counts.get(m.kind, 0) + 1
        return out

    def _bad(self, kind: str, d: _Device, ts: float) -> bytes:
        # Every message is unique (a `seq` field, as real devices send): the dead letter keys MQTT messages
        # by topic and content digest, so identical bytes on one topic would count once.
        self._seq += 1
        seq = self._seq
        good = _payload(d.device_id, ts, {m: round(v, 2) for m, v in self.truth(d, ts).items()}, seq)
        if kind == "truncated_json":
            return good[: max(5, len(good) // 2)]
        if kind == "out_of_range":
            return good.replace(b'"temperature_c":', b'"temperature_c":900,"x":', 1)
        if kind == "missing_device":
            return _ENC.encode({"ts": _iso(ts), "temperature_c": 20.0, "seq": seq})
        if kind == "bad_timestamp":
            return _ENC.encode({"device_id": d.device_id, "ts": "yesterday", "temperature_c": 20.0, "seq": seq})
        return _ENC.encode([d.device_id, ts, seq])

    def run(self, start: float, ticks: int) -> list[SimMessage]:
        """`ticks` ticks from `start`, one every 1/rate seconds (for offline use: tests, benchmarks)."""
        step = 1.0 / self.cfg.rate_hz
        out: list[SimMessage] = []
        for k in range(ticks):
            out.extend(self.tick(start + k * step))
        return out


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload(device_id: str, ts: float, values: dict[str, float], seq: int | None = None) -> bytes:
    body: dict[str, object] = {"device_id": device_id, "ts": _iso(ts), **values}
    if seq is not None:
        body["seq"] = seq
    return _ENC.encode(body)


GOOD_KINDS = ("good", "spike", "stuck")
