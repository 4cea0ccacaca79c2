"""Publish a simulated fleet over MQTT in real time (QoS 1) and count what was sent, by kind."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.connectors.mqtt import MqttConfig
from engine.connectors.publisher import Publisher
from engine.sim.devices import BAD_KINDS, GOOD_KINDS, Fleet, FleetConfig


@dataclass
class SimReport:
    """What was published: per kind, and the totals a test checks at the far end."""

    published: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    anomalies: int = 0
    seconds: float = 0.0
    acked: bool = True

    @property
    def good(self) -> int:
        return sum(self.by_kind.get(k, 0) for k in GOOD_KINDS)

    @property
    def late(self) -> int:
        return self.by_kind.get("late", 0)

    @property
    def bad(self) -> int:
        return sum(self.by_kind.get(k, 0) for k in BAD_KINDS)

    def as_dict(self) -> dict[str, object]:
        return {
            "published": self.published,
            "good": self.good,
            "late": self.late,
            "bad": self.bad,
            "anomalies": self.anomalies,
            "by_kind": dict(sorted(self.by_kind.items())),
            "seconds": round(self.seconds, 3),
            "acked": self.acked,
        }


def simulate(
    fleet_cfg: FleetConfig,
    mqtt: MqttConfig,
    duration_s: float,
    *,
    client_id: str = "tidegate-sim",
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> SimReport:
    """Publish one reading per device every 1/rate seconds for `duration_s`, timestamps = `clock()`."""
    fleet = Fleet(fleet_cfg)
    pub = Publisher(mqtt, client_id)
    report = SimReport()
    step = 1.0 / fleet_cfg.rate_hz
    start = clock()
    ticks = max(1, round(duration_s * fleet_cfg.rate_hz))
    try:
        for k in range(ticks):
            due = start + k * step
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            for m in fleet.tick(clock()):
                pub.publish(m.topic, m.payload)
                report.published += 1
        report.acked = pub.flush(timeout_s=120)
    finally:
        pub.close()
    report.by_kind = dict(fleet.counts)
    report.anomalies = len(fleet.labels)
    report.seconds = clock() - start
    return report
