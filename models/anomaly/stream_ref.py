"""The per-event reference for `stream.ShardDetectors`: the same spike/stuck rules over River detectors
(`detectors.py`, `ewz` = River's EWMean/EWVar), one reading at a time, as the flow ran before it was
vectorised. A parity test holds the numpy `ewz` to it (the same anomalies, to the bit), and it is the
per-event loop of `bench.iot_flow`. Imports River.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable

from engine.connectors.messages import MEASUREMENTS, Anomaly
from engine.schema import SensorReading
from models.anomaly.detectors import make_detector
from models.anomaly.stream import DetectorConfig


class _Track:
    __slots__ = ("consecutive", "det", "flagged", "last", "repeats")

    def __init__(self, det: object) -> None:
        self.det = det
        self.last: float | None = None
        self.repeats = 0
        self.consecutive = 0
        self.flagged = False


class ReferenceDetectors:
    """The detectors of the devices in one shard, one reading at a time."""

    def __init__(self, cfg: DetectorConfig, devices: dict[str, tuple[float, list[_Track | None]]] | None = None):
        self.cfg = cfg
        self.devices: dict[str, tuple[float, list[_Track | None]]] = devices or {}
        self._active = [(i, m, cfg.detectors.get(m, "off")) for i, m in enumerate(MEASUREMENTS)]
        self._stuck = [m in cfg.stuck_measurements for m in MEASUREMENTS]
        self._max_ts = 0.0
        self._since_sweep = 0

    def _new_tracks(self) -> list[_Track | None]:
        cfg = self.cfg
        out: list[_Track | None] = []
        for _, m, name in self._active:
            if name == "off":
                out.append(None)
                continue
            det = make_detector(
                name, fading_factor=cfg.fading_factor, min_std=cfg.min_std.get(m, 0.0), warmup=cfg.warmup
            )
            out.append(_Track(det))
        return out

    def process(self, readings: Iterable[SensorReading]) -> list[Anomaly]:
        cfg = self.cfg
        threshold, patience, stuck_after = cfg.threshold, cfg.patience, cfg.stuck_after
        stuck_on = self._stuck
        devices = self.devices
        out: list[Anomaly] = []
        max_ts = self._max_ts
        n = 0
        for r in readings:
            n += 1
            t = r.ts.timestamp()
            if t > max_ts:
                max_ts = t
            entry = devices.get(r.device_id)
            tracks = self._new_tracks() if entry is None else entry[1]
            devices[r.device_id] = (t, tracks)
            for i, y in enumerate((r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_g)):
                tr = tracks[i]
                if y is None or tr is None:
                    continue
                if y == tr.last:
                    tr.repeats += 1
                    if stuck_on[i] and tr.repeats >= stuck_after and not tr.flagged:
                        tr.flagged = True
                        out.append(_anomaly(r, i, "stuck", y, float(tr.repeats), tr.det, "repeat"))
                    if tr.repeats >= 3:
                        continue  # a repeated value teaches nothing and would collapse the variance
                else:
                    tr.last = y
                    tr.repeats = 1
                    tr.flagged = False
                det = tr.det
                score = det.score_one(None, y)  # type: ignore[attr-defined]
                if score >= threshold:
                    tr.consecutive += 1
                    if tr.consecutive <= patience:
                        out.append(_anomaly(r, i, "spike", y, score, det, self._active[i][2]))
                        continue
                else:
                    tr.consecutive = 0
                det.learn_one(None, y)  # type: ignore[attr-defined]
        self._max_ts = max_ts
        self._since_sweep += n
        if self._since_sweep >= 10_000:
            self.expire(max_ts - cfg.device_ttl_s)
        return out

    def expire(self, before: float) -> int:
        """Forget devices last seen (event time) before `before`; return how many."""
        self._since_sweep = 0
        gone = [d for d, (last, _) in self.devices.items() if last < before]
        for d in gone:
            del self.devices[d]
        return len(gone)

    def snapshot(self) -> bytes:
        return pickle.dumps((self.devices, self._max_ts), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, cfg: DetectorConfig, state: bytes | None) -> ReferenceDetectors:
        if state is None:
            return cls(cfg)
        devices, max_ts = pickle.loads(state)  # our own recovery snapshot (Bytewax state)
        out = cls(cfg, devices)
        out._max_ts = max_ts
        return out


def _anomaly(r: SensorReading, i: int, kind: str, y: float, score: float, det: object, name: str) -> Anomaly:
    expected = det.expected() if hasattr(det, "expected") else None
    return Anomaly(
        device_id=r.device_id,
        ts=r.ts,
        measurement=MEASUREMENTS[i],
        kind=kind,
        value=y,
        score=round(score, 3),
        expected=expected,
        detector=name,
    )
