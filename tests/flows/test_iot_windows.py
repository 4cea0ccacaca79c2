"""Event-time windows per device: late, duplicates, closing on silence, bounded state, resume."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from engine.connectors.windows import ShardWindows, WindowConfig
from engine.connectors.windows_ref import ReferenceWindows
from engine.schema import SensorReading

T0 = 1_714_557_600.0  # a window boundary for 10 s windows


def r(device: str, t: float, temp: float | None = 20.0, vib: float | None = None) -> SensorReading:
    ts = dt.datetime.fromtimestamp(t, dt.UTC)
    return SensorReading(device_id=device, ts=ts, temperature_c=temp, vibration_g=vib)


CFG = WindowConfig(length_s=10, allowed_lateness_s=2, tick_s=0.1, device_ttl_s=60)


def test_aggregates_close_when_the_watermark_passes_and_late_readings_are_refused() -> None:
    w = ShardWindows(CFG)
    now = 1000.0  # system time: separate from event time on purpose
    acc, late, dups, closed = w.add([r("a", T0 + 1, 10.0), r("a", T0 + 5, 14.0, 0.5), r("a", T0 + 9, 12.0)], now)
    assert (len(acc), late, dups, closed) == (3, [], 0, [])
    # The next window starts; the first closes only once the watermark (max ts - 2 s) passes its end.
    acc, late, dups, closed = w.add([r("a", T0 + 11)], now)
    assert closed == []
    acc, late, dups, closed = w.add([r("a", T0 + 12.5)], now)
    assert closed == []  # windows close on the operator's tick (or when a device opens a new window)
    [win] = w.close_due(now)
    assert (win.device_id, win.window_start, win.window_end, win.count) == ("a", T0, T0 + 10, 3)
    n, mean, lo, hi, std = win.stats[0]
    assert (n, mean, lo, hi) == (3, 12.0, 10.0, 14.0) and abs(std - 2.0) < 1e-12
    assert win.stats[3] == (1, 0.5, 0.5, 0.5, None)
    assert win.stats[1] == (0, None, None, None, None)
    # A reading for the closed window is late (with the watermark that judged it); a repeat is a duplicate.
    acc, late, dups, closed = w.add([r("a", T0 + 9.5), r("a", T0 + 12.5)], now)
    assert len(acc) == 0 and dups == 1 and [x.ts.timestamp() for x, _ in late] == [T0 + 9.5]
    assert late[0][1] == T0 + 10.5


def test_a_silent_device_closes_by_system_time_and_is_forgotten_after_its_ttl() -> None:
    w = ShardWindows(CFG)
    w.add([r("quiet", T0 + 3)], now=1000.0)
    assert w.close_due(1000.0) == []
    assert w.close_due(1000.0 + 8.9) == []  # watermark T0+1+8.9 < T0+10
    [win] = w.close_due(1000.0 + 9.1)
    assert win.count == 1 and w.open_windows == 0
    assert "quiet" in w.devices
    w.close_due(1000.0 + 9.1 + 61)
    assert w.devices == {}


def test_state_stays_bounded_with_many_devices() -> None:
    w = ShardWindows(CFG)
    for k in range(30):
        w.add([r(f"d{i}", T0 + k) for i in range(500)], now=1000.0 + k)
        w.close_due(1000.0 + k)
    assert w.open_windows <= 2 * 500
    w.close_due(1000.0 + 200)
    assert w.open_windows == 0 and w.devices == {}


def test_resume_does_not_count_downtime_and_keeps_the_watermark() -> None:
    w = ShardWindows(CFG)
    w.add([r("a", T0 + 1), r("a", T0 + 4)], now=1000.0)
    state = w.snapshot(now=1000.5)
    # The process was down for an hour: the backlog must not turn late.
    back = ShardWindows.restore(CFG, state, now=4600.0)
    acc, late, dups, _ = back.add([r("a", T0 + 4), r("a", T0 + 6)], now=4600.0)
    assert dups == 1 and late == [] and len(acc) == 1
    acc, late, *_ = back.add([r("a", T0 + 2.4)], now=4600.0)  # behind the frozen watermark T0+2.5
    assert len(acc) == 0 and len(late) == 1
    [win] = back.close_all(now=4601.0)
    assert win.count == 3


def _stream(seed: int, batches: int = 60) -> list[tuple[float, list[SensorReading], str]]:
    """Random batches with the awkward cases: out of order within lateness, late, repeats, gaps that
    open several windows at once, absent measurements, devices that fall silent; and what to do after
    each batch ('tick', 'snapshot' or nothing)."""
    rng = random.Random(seed)
    clock = {f"d{i}": T0 + rng.uniform(0, 5) for i in range(6)}
    sent: list[SensorReading] = []
    now = 1000.0
    out = []
    for _ in range(batches):
        rows = []
        for _ in range(rng.randint(0, 25)):
            d = rng.choice(list(clock)[: rng.randint(1, 6)])
            roll = rng.random()
            if roll < 0.08 and sent:
                rows.append(rng.choice(sent))  # a repeat
                continue
            if roll < 0.15:
                t = clock[d] - rng.uniform(0, 30)  # out of order: within lateness or late
            elif roll < 0.18:
                clock[d] += rng.uniform(15, 45)  # a gap
                t = clock[d]
            else:
                clock[d] += rng.choice([0.25, 0.5, 1.0, 1.5])
                t = clock[d]
            values = [None if rng.random() < 0.2 else round(rng.gauss(20, 3), 2) for _ in range(2)]
            rows.append(r(d, round(t, 3), values[0], None if values[1] is None else abs(values[1]) / 10))
            sent.append(rows[-1])
        now += rng.choice([0.0, 0.1, 0.5, 2.0, 8.0])
        out.append((now, rows, rng.choice(["", "", "tick", "snapshot"])))
    return out


def _same_windows(a: list, b: list) -> bool:
    key = lambda w: (w.device_id, w.window_start)  # noqa: E731
    a, b = sorted(a, key=key), sorted(b, key=key)
    if [(w.device_id, w.window_start, w.window_end, w.count, w.closed_at) for w in a] != [
        (w.device_id, w.window_start, w.window_end, w.count, w.closed_at) for w in b
    ]:
        return False
    for x, y in zip(a, b, strict=True):
        for sx, sy in zip(x.stats, y.stats, strict=True):
            if sx[0] != sy[0] or any((p is None) != (q is None) for p, q in zip(sx, sy, strict=True)):
                return False
            close = (p is None or math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9) for p, q in zip(sx, sy, strict=True))
            if not all(close):
                return False
    return True


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("lateness", [3.0, 25.0])  # 25 s: several windows open per device at once
def test_the_vectorised_windows_match_the_per_event_reference(seed: int, lateness: float) -> None:
    cfg = WindowConfig(length_s=10, allowed_lateness_s=lateness, tick_s=0.1, device_ttl_s=30)
    fast, slow = ShardWindows(cfg), ReferenceWindows(cfg)
    for now, rows, after in _stream(seed):
        acc, late, dups, closed = fast.add(rows, now)
        ref_acc, ref_late, ref_dups, ref_closed = slow.add(rows, now)
        assert acc.rows == ref_acc
        assert late == ref_late and dups == ref_dups
        assert _same_windows(closed, ref_closed)
        if after == "tick":
            assert _same_windows(fast.close_due(now), slow.close_due(now))
            assert set(fast.devices) == set(slow.devices)
        elif after == "snapshot":
            fast = ShardWindows.restore(cfg, fast.snapshot(now), now + 100)
            slow = ReferenceWindows.restore(cfg, slow.snapshot(now), now + 100)
        assert fast.open_windows == slow.open_windows
    assert _same_windows(fast.close_all(2e9), slow.close_all(2e9))


@pytest.mark.parametrize("absent", [False, True])
def test_steady_batches_go_in_place_and_match_the_per_event_reference(absent: bool) -> None:
    """Issue 3: the usual batch (every reading in a window its device has open, on time, no repeats) is applied
    in place without sorting (`ShardWindows._common`); it must give what the per-event reference gives, with
    measurements absent now and then (a window's first value of a measurement sets its shift, so that batch
    takes the general path)."""
    cfg = WindowConfig(length_s=10, allowed_lateness_s=3, tick_s=0.1, device_ttl_s=60)
    fast, slow = ShardWindows(cfg), ReferenceWindows(cfg)
    in_place = []
    common = fast._common
    fast._common = lambda *a: in_place.append(common(*a)) or in_place[-1]  # type: ignore[method-assign]
    rng = random.Random(3)
    now = 1000.0
    for k in range(80):  # 40 devices, two readings each per 0.5 s batch, devices interleaved
        rows = []
        for j in range(2):
            for i in rng.sample(range(40), 40):
                vib = None if absent and rng.random() < 0.3 else round(abs(rng.gauss(0.5, 0.1)), 3)
                rows.append(r(f"d{i}", T0 + k * 0.5 + j * 0.25 + i / 1000, round(rng.gauss(20, 3), 2), vib))
        now += 0.5
        acc, late, dups, closed = fast.add(rows, now)
        ref_acc, ref_late, ref_dups, ref_closed = slow.add(rows, now)
        assert acc.rows == ref_acc and late == ref_late and dups == ref_dups
        assert _same_windows(closed, ref_closed)
        if k % 7 == 0:
            assert _same_windows(fast.close_due(now), slow.close_due(now))
    assert _same_windows(fast.close_all(now), slow.close_all(now))
    assert sum(in_place) > len(in_place) / 2  # most batches took the in-place path


@pytest.mark.parametrize("seed", range(4))
def test_the_repeat_log_compacted_after_every_batch_still_matches_the_reference(seed: int) -> None:
    """Issue 3 (memory): the log of counted event times is kept packed (int32 offsets) and compacted chunk by
    chunk; compacting after every batch must not change a verdict."""
    cfg = WindowConfig(length_s=10, allowed_lateness_s=25.0, tick_s=0.1, device_ttl_s=30)
    fast, slow = ShardWindows(cfg), ReferenceWindows(cfg)
    for now, rows, after in _stream(seed, batches=80):
        fast._log_limit = 0  # the next append compacts
        acc, late, dups, closed = fast.add(rows, now)
        ref_acc, ref_late, ref_dups, ref_closed = slow.add(rows, now)
        assert acc.rows == ref_acc and late == ref_late and dups == ref_dups
        assert _same_windows(closed, ref_closed)
        if after == "tick":
            assert _same_windows(fast.close_due(now), slow.close_due(now))
        elif after == "snapshot":
            fast = ShardWindows.restore(cfg, fast.snapshot(now), now + 100)
            slow = ReferenceWindows.restore(cfg, slow.snapshot(now), now + 100)
    assert _same_windows(fast.close_all(2e9), slow.close_all(2e9))


def test_a_batch_spanning_hours_keeps_its_event_times_exact() -> None:
    """A backlog batch whose event times span more than int32 microseconds (~36 min) is logged unpacked; its
    repeats are still found, also after a resume."""
    cfg = WindowConfig(length_s=3600, allowed_lateness_s=7200, tick_s=0.1, device_ttl_s=1e6)
    fast, slow = ShardWindows(cfg), ReferenceWindows(cfg)
    rows = [r("a", T0 + k * 600.123) for k in range(12)] + [r("b", T0 + 1.5)]
    for w in (fast, slow):
        w.add(rows, now=1000.0)
    assert any(chunk[3].dtype.name == "int64" for chunk in fast._log)
    fast = ShardWindows.restore(cfg, fast.snapshot(1000.0), 1001.0)
    slow = ReferenceWindows.restore(cfg, slow.snapshot(1000.0), 1001.0)
    again = [*rows[::3], r("a", T0 + 5.0)]
    acc, late, dups, _ = fast.add(again, now=1001.0)
    ref_acc, ref_late, ref_dups, _ = slow.add(again, now=1001.0)
    assert (acc.rows, late, dups) == (ref_acc, ref_late, ref_dups) and dups == 5
    assert _same_windows(fast.close_all(2e9), slow.close_all(2e9))


def test_a_snapshot_whose_log_is_one_unpacked_pair_still_restores() -> None:
    """Snapshots written before the log was packed hold it as one (uids, ts_us) pair of int64 arrays."""
    import numpy as np

    from engine.connectors import windows as mod
    from engine.snapshots import dump_state, load_state

    w = ShardWindows(CFG)
    w.add([r("a", T0 + 1), r("a", T0 + 4), r("b", T0 + 2)], now=1000.0)
    data = load_state(w.snapshot(now=1000.5), mod._STATE_VERSION, "window")
    chunks = data.pop("version") and data["log"]
    data["log"] = (
        np.concatenate([mod._unpack(c[0], c[1]) for c in chunks]),
        np.concatenate([mod._unpack(c[2], c[3]) for c in chunks]),
    )
    back = ShardWindows.restore(CFG, dump_state(data, mod._STATE_VERSION), now=1001.0)
    acc, late, dups, _ = back.add([r("a", T0 + 4), r("b", T0 + 2), r("b", T0 + 3)], now=1001.0)
    assert dups == 2 and late == [] and len(acc) == 1
