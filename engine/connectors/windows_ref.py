"""The per-event reference for `engine.connectors.windows`: the same semantics, one reading at a time in
plain Python. The flow runs the vectorised `ShardWindows`; this one is the executable spec a parity test
holds it to, and the naive loop of `bench.iot_flow`.

Semantics (those of Bytewax's `EventClock` + `TumblingWindower`, applied per device):
- A device's watermark is its largest event time seen minus `allowed_lateness_s`, plus the system time
  elapsed since that reading arrived, and never goes back. So windows close when a device goes silent.
- A reading older than its device's watermark is *late*: it is not counted, and goes to the dead letter.
- A window [start, start + length) closes when the watermark passes its end, and is emitted once.
- A reading whose (device_id, ts) is already in an open window is a duplicate (an MQTT redelivery) and is
  dropped, so a replay after a crash never counts a reading twice.
- State is bounded: closed windows are dropped; a device silent for `device_ttl_s` with no open window is
  forgotten. Downtime does not count: after a resume, system time restarts from the restore moment.

Time is injected: every call takes `now` (epoch seconds, UTC).
"""

from __future__ import annotations

import math
import pickle
from array import array
from collections.abc import Iterable

from engine.connectors.messages import WindowAgg
from engine.connectors.windows import WindowConfig
from engine.schema import SensorReading

_NO_STATS = (0, None, None, None, None)
_EMPTY = array("d", [0.0] * 24)


class _Acc:
    """One open window, compact (10 000 devices must fit in a small box): `ts` holds the event times
    counted (8 bytes each; searched only when a reading is not newer than the last one), `m` holds per
    measurement [n, shift, sum(x-shift), sum((x-shift)^2), min, max] at offset 6*i."""

    __slots__ = ("count", "last", "m", "ts")

    def __init__(self) -> None:
        self.count = 0
        self.last = -math.inf
        self.ts = array("d")
        self.m = array("d", _EMPTY)

    def stats(self) -> tuple[tuple[int, float | None, float | None, float | None, float | None], ...]:
        out = []
        m = self.m
        for i in range(0, 24, 6):
            n = m[i]
            if not n:
                out.append(_NO_STATS)
                continue
            shift, s1, s2, lo, hi = m[i + 1], m[i + 2], m[i + 3], m[i + 4], m[i + 5]
            mean = shift + s1 / n
            std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1)) if n > 1 else None
            out.append((int(n), mean, lo, hi, std))
        return tuple(out)


class _Device:
    __slots__ = ("max_ts", "seen_at", "windows", "wm_floor")

    def __init__(self, ts: float, now: float, lateness: float) -> None:
        self.max_ts = ts
        self.seen_at = now
        self.wm_floor = ts - lateness
        self.windows: dict[int, _Acc] = {}

    def watermark(self, now: float, lateness: float) -> float:
        wm = self.max_ts - lateness + max(now - self.seen_at, 0.0)
        return wm if wm > self.wm_floor else self.wm_floor


class ReferenceWindows:
    """The windows of the devices in one shard, one reading at a time."""

    def __init__(self, cfg: WindowConfig, devices: dict[str, _Device] | None = None) -> None:
        self.cfg = cfg
        self.devices: dict[str, _Device] = devices or {}

    # -- input ------------------------------------------------------------------------------------------
    def add(
        self, readings: Iterable[SensorReading], now: float
    ) -> tuple[list[SensorReading], list[tuple[SensorReading, float]], int, list[WindowAgg]]:
        """-> (accepted, late with the watermark that judged them, duplicates, windows closed meanwhile)."""
        length = self.cfg.length_s
        lateness = self.cfg.allowed_lateness_s
        devices = self.devices
        accepted: list[SensorReading] = []
        late: list[tuple[SensorReading, float]] = []
        closed: list[WindowAgg] = []
        dups = 0
        for r in readings:
            t = r.ts.timestamp()
            dev = devices.get(r.device_id)
            if dev is None:
                dev = devices[r.device_id] = _Device(t, now, lateness)
            else:
                wm = dev.watermark(now, lateness)
                if t < wm:
                    late.append((r, wm))
                    continue
                if t > dev.max_ts:
                    dev.wm_floor = wm
                    dev.max_ts = t
                    dev.seen_at = now
            idx = int(t // length)
            acc = dev.windows.get(idx)
            if acc is None:
                acc = dev.windows[idx] = _Acc()
                if len(dev.windows) > 1:
                    self._close_device(r.device_id, dev, now, closed)
            if t > acc.last:
                acc.last = t
            elif t in acc.ts:
                dups += 1
                continue
            acc.ts.append(t)
            acc.count += 1
            m = acc.m
            i = 0
            for x in (r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_g):
                if x is not None:
                    if m[i]:
                        d = x - m[i + 1]
                        m[i] += 1
                        m[i + 2] += d
                        m[i + 3] += d * d
                        if x < m[i + 4]:
                            m[i + 4] = x
                        elif x > m[i + 5]:
                            m[i + 5] = x
                    else:
                        m[i] = 1
                        m[i + 1] = m[i + 4] = m[i + 5] = x
                i += 6
            accepted.append(r)
        return accepted, late, dups, closed

    # -- closing ----------------------------------------------------------------------------------------
    def _close_device(self, device_id: str, dev: _Device, now: float, out: list[WindowAgg]) -> None:
        length = self.cfg.length_s
        wm = dev.watermark(now, self.cfg.allowed_lateness_s)
        for idx in sorted(dev.windows):
            start = idx * length
            end = start + length
            if end > wm:
                break
            acc = dev.windows.pop(idx)
            out.append(WindowAgg(device_id, start, end, acc.count, acc.stats(), now))

    def close_due(self, now: float) -> list[WindowAgg]:
        """Close every window whose device watermark has passed its end; forget long-silent devices."""
        out: list[WindowAgg] = []
        ttl = self.cfg.device_ttl_s
        gone = []
        for device_id, dev in self.devices.items():
            if dev.windows:
                self._close_device(device_id, dev, now, out)
            if not dev.windows and now - dev.seen_at > ttl:
                gone.append(device_id)
        for device_id in gone:
            del self.devices[device_id]
        return out

    def close_all(self, now: float) -> list[WindowAgg]:
        """End of input: emit every open window."""
        out = []
        for device_id, dev in self.devices.items():
            for idx in sorted(dev.windows):
                acc = dev.windows[idx]
                start = idx * self.cfg.length_s
                out.append(WindowAgg(device_id, start, start + self.cfg.length_s, acc.count, acc.stats(), now))
            dev.windows.clear()
        return out

    @property
    def open_windows(self) -> int:
        return sum(len(d.windows) for d in self.devices.values())

    # -- recovery ---------------------------------------------------------------------------------------
    def snapshot(self, now: float) -> bytes:
        """An immutable copy. Watermarks are frozen at `now`; on restore system time restarts from the
        restore moment, so downtime does not make the backlog late."""
        lateness = self.cfg.allowed_lateness_s
        for dev in self.devices.values():
            dev.wm_floor = dev.watermark(now, lateness)
        return pickle.dumps(self.devices, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, cfg: WindowConfig, state: bytes | None, now: float) -> ReferenceWindows:
        if state is None:
            return cls(cfg)
        devices: dict[str, _Device] = pickle.loads(state)  # our own recovery snapshot (Bytewax state)
        lateness = cfg.allowed_lateness_s
        for dev in devices.values():
            # Resume the watermark where the snapshot froze it and let system time run from now.
            dev.max_ts = dev.wm_floor + lateness
            dev.seen_at = now
        return cls(cfg, devices)
