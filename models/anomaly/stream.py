"""Per-device anomaly detection over micro-batches of accepted readings (the IoT flow's `detect` step).

For each device and measurement: a detector scores each value before learning it; a score at or above
`threshold` is a *spike*. Spikes are not learned (they would drag the level), unless `patience` arrive in a
row: then the level really moved and the detector follows it. A value repeated exactly `stuck_after` times
in a row is a *stuck* sensor (reported once per episode; repeats are not learned either, so the variance
does not collapse). Devices not seen for `device_ttl_s` of event time are forgotten (bounded state).

Detectors by measurement (`DetectorConfig.detectors`): `ewz` (the default) runs vectorised over the batch
with numpy (`ewz.py`); the River detectors (`sad`, `gaussian`, `hst`, and `ewz-river`, the River form of
`ewz` that `ewz` is parity-tested against) run one reading at a time (`detectors.py`). River, and scipy
with it, is imported only when one of those is chosen; `off` skips the measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np

from engine.connectors.codes import CodeSlots
from engine.connectors.messages import MEASUREMENTS, Anomaly, Readings, to_datetime
from engine.connectors.slots import by_slot, lookup
from engine.errors import UsageError
from engine.schema import SensorReading
from engine.snapshots import dump_state, load_state
from models.anomaly.ewz import EwzState, params_from

_DEFAULT_MIN_STD = {"temperature_c": 0.05, "humidity_pct": 0.1, "pressure_hpa": 0.05, "vibration_g": 0.01}
RIVER_DETECTORS = ("ewz-river", "sad", "gaussian", "hst")  # the names in detectors.DETECTORS besides ewz
NAMES = ("ewz", *RIVER_DETECTORS, "off")
_STATE_VERSION = 2


class DetectorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Anomaly knobs. `detectors` maps a measurement to a detector name (or 'off')."""

    detectors: dict[str, str] = msgspec.field(default_factory=lambda: dict.fromkeys(MEASUREMENTS, "ewz"))
    threshold: float = 6.0
    fading_factor: float = 0.05
    warmup: int = 30
    min_std: dict[str, float] = msgspec.field(default_factory=lambda: dict(_DEFAULT_MIN_STD))
    patience: int = 5
    stuck_after: int = 15
    stuck_measurements: tuple[str, ...] = ("temperature_c", "humidity_pct", "pressure_hpa")
    device_ttl_s: float = 3600.0


class _Track:
    __slots__ = ("consecutive", "det", "flagged", "last", "repeats")

    def __init__(self, det: object) -> None:
        self.det = det
        self.last: float | None = None
        self.repeats = 0
        self.consecutive = 0
        self.flagged = False


class ShardDetectors:
    """The detectors of the devices in one shard."""

    def __init__(self, cfg: DetectorConfig) -> None:
        self.cfg = cfg
        names = [cfg.detectors.get(m, "off") for m in MEASUREMENTS]
        for name in names:
            if name not in NAMES:
                msg = f"unknown detector {name!r}: choose one of {', '.join(NAMES)}"
                raise UsageError(msg)
        self._names = names
        self._ewz = EwzState(params_from(cfg, [n == "ewz" for n in names])) if "ewz" in names else None
        self._river_cols = [i for i, n in enumerate(names) if n in RIVER_DETECTORS]
        self._river: dict[int, list[_Track | None]] = {}  # slot -> tracks (River measurements only)
        self._stuck = [m in cfg.stuck_measurements for m in MEASUREMENTS]
        self.devices: dict[str, int] = {}  # device id -> slot
        self._codes = CodeSlots()  # device code -> slot (forgotten whenever a slot is freed)
        self._ids: list[str | None] = []
        self._free: list[int] = []
        self._seen = np.zeros(0)  # event time of each device's latest reading
        self._max_ts = 0.0
        self._since_sweep = 0

    # -- devices ----------------------------------------------------------------------------------------
    def _add_devices(self, ids: list[str]) -> np.ndarray:
        new = [d for d in dict.fromkeys(ids) if d not in self.devices]
        cap = len(self._ids) + max(0, len(new) - len(self._free))
        if cap > len(self._seen):
            size = max(cap, len(self._seen) * 5 // 4, 64)  # 1.25x: a doubling holds up to twice the state
            self._seen = np.concatenate([self._seen, np.zeros(size - len(self._seen))])
            if self._ewz is not None:
                self._ewz.grow(size)
        fresh = []
        for d in new:
            slot = self._free.pop() if self._free else len(self._ids)
            if slot == len(self._ids):
                self._ids.append(d)
            else:
                self._ids[slot] = d
            self.devices[d] = slot
            fresh.append(slot)
        if self._ewz is not None:
            self._ewz.reset(fresh)
        return lookup(self.devices, ids)

    def _river_tracks(self) -> list[_Track | None]:
        from models.anomaly.detectors import make_detector  # River (and scipy) only when chosen

        cfg = self.cfg
        out: list[_Track | None] = [None] * len(MEASUREMENTS)
        for i in self._river_cols:
            name = self._names[i]
            m = MEASUREMENTS[i]
            det = make_detector(
                name, fading_factor=cfg.fading_factor, min_std=cfg.min_std.get(m, 0.0), warmup=cfg.warmup
            )
            out[i] = _Track(det)
        return out

    # -- detection --------------------------------------------------------------------------------------
    def process(self, readings: Readings | Iterable[SensorReading]) -> list[Anomaly]:
        """Score and learn a batch (arrival order per device); -> the anomalies found."""
        batch = readings if isinstance(readings, Readings) else Readings.from_rows(list(readings))
        n = len(batch)
        if not n:
            return []
        slots = self._codes.slots(batch, self.devices, self._add_devices)
        order = by_slot(slots)
        dev_of = slots[order]
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(dev_of[1:], dev_of[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        ends = np.empty_like(starts)  # one past each device's last row (in `order`)
        ends[:-1] = starts[1:]
        ends[-1] = n
        dev = dev_of[starts]
        tu = batch.ts_us
        found: list[Anomaly] = []
        if self._ewz is not None:
            hits = self._ewz.run(dev, order, starts, ends - starts, batch.values)
            for row, i, kind, y, score, expected in hits:
                found.append(
                    Anomaly(
                        device_id=batch.device_id[row],
                        ts=to_datetime(int(tu[row])),
                        measurement=MEASUREMENTS[i],
                        kind=kind,
                        value=y,
                        score=round(score, 3),
                        expected=expected,
                        detector="repeat" if kind == "stuck" else "ewz",
                    )
                )
        if self._river_cols:
            found += self._process_river(batch, slots)
        self._seen[dev] = tu[order[ends - 1]] / 1e6  # the latest reading in arrival order
        top = float(tu.max()) / 1e6
        if top > self._max_ts:
            self._max_ts = top
        self._since_sweep += n
        if self._since_sweep >= 10_000:
            self.expire(self._max_ts - self.cfg.device_ttl_s)
        return found

    def _process_river(self, batch: Readings, slots: np.ndarray) -> list[Anomaly]:
        """The River detectors, one reading at a time."""
        cfg = self.cfg
        threshold, patience, stuck_after = cfg.threshold, cfg.patience, cfg.stuck_after
        stuck_on = self._stuck
        cols = self._river_cols
        out: list[Anomaly] = []
        for slot, d, us, row in zip(
            slots.tolist(), batch.device_id.tolist(), batch.ts_us.tolist(), batch.values.tolist(), strict=True
        ):
            tracks = self._river.get(slot)
            if tracks is None:
                tracks = self._river[slot] = self._river_tracks()
            for i in cols:
                y = row[i]
                tr = tracks[i]
                if y != y or tr is None:
                    continue
                if y == tr.last:
                    tr.repeats += 1
                    if stuck_on[i] and tr.repeats >= stuck_after and not tr.flagged:
                        tr.flagged = True
                        out.append(_anomaly(d, us, i, "stuck", y, float(tr.repeats), tr.det, "repeat"))
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
                        out.append(_anomaly(d, us, i, "spike", y, score, det, self._names[i]))
                        continue
                else:
                    tr.consecutive = 0
                det.learn_one(None, y)  # type: ignore[attr-defined]
        return out

    def expire(self, before: float) -> int:
        """Forget devices last seen (event time) before `before`; return how many."""
        self._since_sweep = 0
        if not self.devices:
            return 0
        slots = np.fromiter(self.devices.values(), dtype=np.int64, count=len(self.devices))
        gone = slots[self._seen[slots] < before].tolist()
        for slot in gone:
            del self.devices[self._ids[slot]]  # type: ignore[arg-type]
            self._ids[slot] = None
            self._river.pop(slot, None)
            self._free.append(slot)
        if gone:
            self._codes.forget()
        return len(gone)

    # -- recovery ---------------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        names = list(self.devices)
        slots = np.fromiter(self.devices.values(), dtype=np.int64, count=len(names))
        state: dict[str, Any] = {
            "names": names,
            "seen": self._seen[slots],
            "max_ts": self._max_ts,
            "ewz": self._ewz.export(slots) if self._ewz is not None else None,
            "river": [self._river.get(s) for s in slots.tolist()] if self._river_cols else None,
        }
        return dump_state(state, _STATE_VERSION)

    @classmethod
    def restore(cls, cfg: DetectorConfig, state: bytes | None) -> ShardDetectors:
        out = cls(cfg)
        if state is None:
            return out
        data = load_state(state, _STATE_VERSION, "detector")
        names: list[str] = data["names"]
        slots = out._add_devices(names)
        out._seen[slots] = data["seen"]
        out._max_ts = data["max_ts"]
        if out._ewz is not None and data["ewz"] is not None:
            out._ewz.load(data["ewz"], slots)
        if out._river_cols and data["river"] is not None:
            for slot, tracks in zip(slots.tolist(), data["river"], strict=True):
                if tracks is not None:
                    out._river[slot] = tracks
        return out


def _anomaly(device_id: str, ts_us: int, i: int, kind: str, y: float, score: float, det: object, name: str) -> Anomaly:
    expected = det.expected() if hasattr(det, "expected") else None
    return Anomaly(
        device_id=device_id,
        ts=to_datetime(ts_us),
        measurement=MEASUREMENTS[i],
        kind=kind,
        value=y,
        score=round(score, 3),
        expected=expected,
        detector=name,
    )
