"""Event-time tumbling windows per device, computed a whole micro-batch at a time with numpy (the IoT
flow's stateful step).

Semantics (those of Bytewax's `EventClock` + `TumblingWindower`, applied per device):
- A device's watermark is its largest event time seen minus `allowed_lateness_s`, plus the system time
  elapsed since that reading arrived, and never goes back. So windows close when a device goes silent.
- A reading older than its device's watermark is *late*: it is not counted, and goes to the dead letter.
- A window [start, start + length) closes when the watermark passes its end, and is emitted once: when the
  device opens a new window, or on the operator's tick (`close_due`).
- A reading whose (device_id, ts) is already in an open window is a duplicate (an MQTT redelivery) and is
  dropped, so a replay after a crash never counts a reading twice.
- State is bounded: closed windows are dropped; a device silent for `device_ttl_s` with no open window is
  forgotten. Downtime does not count: after a resume, system time restarts from the restore moment.

`engine.connectors.windows_ref.ReferenceWindows` is the same thing one reading at a time; a parity test
holds the two together. The usual batch (every reading in a window its device already has open, on time,
not a repeat: all but the batches where windows open) is checked for that and applied in place, reading by
reading in arrival order, with unbuffered indexed ufuncs (`_common`). Any other batch, without a
per-reading Python step either:
- Readings are grouped by device (a stable sort keeps arrival order). The watermark each reading is judged
  by is max(the device's watermark at the start of the batch, the largest event time before it in the
  batch - lateness): a segmented running maximum.
- Accepted readings are grouped by (device, window); each group's count, sum and sum of squares (shifted by
  the window's first value), min and max per measurement merge into the window's running aggregates.
- A device that opened a window in the batch closes every window whose end its watermark passed at that
  moment (the last opening decides: watermarks only rise). Windows opened and closed inside one batch
  never enter the state.
- State is columnar: per device slot (max event time, when it was seen, watermark floor), and per open
  window a cell `slot * ring + window_index % ring` (the ring grows when a device needs more open windows).
  The event times counted in open windows are kept in a log, read only when a reading is not newer than
  every reading already in its window (the only way it can be a repeat); each batch's chunk of it is held
  as int32 offsets from a base where they fit (half the memory of int64 pairs).
- Closed windows come out as columns (`ClosedWindows`), read as `WindowAgg`s: every device's window closes
  at the same minute, and 10 000 of them as objects cost ~15 MB at once.

Time is injected: every call takes `now` (epoch seconds, UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from engine.connectors.codes import CodeSlots
from engine.connectors.messages import MEASUREMENTS, ClosedWindows, Readings, WindowAgg, row
from engine.connectors.slots import by_slot, lookup
from engine.schema import SensorReading
from engine.snapshots import dump_state, load_state

_M = len(MEASUREMENTS)
_N, _SHIFT, _S1, _S2, _MIN, _MAX = range(6)  # per window and measurement
_EMPTY = np.array([0.0, 0.0, 0.0, 0.0, np.nan, np.nan])[:, None].repeat(_M, axis=1)
_NONE = np.iinfo(np.int64).min
_STATE_VERSION = 2
_NO_STATS = (0, None, None, None, None)


class WindowConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Window knobs. Changing `length_s` or the shard count (`shards`, or `mqtt.partitions` when it is None)
    between runs that share a recovery dir is not allowed."""

    length_s: float = 60.0
    allowed_lateness_s: float = 10.0
    # Devices are spread over this many keyed states (stable crc32 of device_id), which Bytewax places on its
    # workers: a cluster of processes shares the window (and detector) work only across shards. Each shard's
    # batch is one vectorised pass with a fixed cost (~150 numpy calls), so fewer, fuller shards are faster:
    # one process measured ~35% faster with 1 shard than with 4 (bench.iot_flow). None: one per MQTT
    # partition (`mqtt.partitions`), i.e. 1 for a single process and one per process in a cluster; set it
    # higher in a cluster for a more even balance.
    shards: int | None = None
    tick_s: float = 0.5  # how often windows of silent devices are checked for closing
    device_ttl_s: float = 3600.0


class ShardWindows:
    """The windows of the devices in one shard."""

    def __init__(self, cfg: WindowConfig) -> None:
        self.cfg = cfg
        self.devices: dict[str, int] = {}  # device id -> slot
        self._codes = CodeSlots()  # device code -> slot (forgotten whenever a slot is freed)
        self._names: list[str | None] = []
        self._free: list[int] = []
        self._max_ts = np.empty(0)
        self._seen_at = np.empty(0)
        self._floor = np.empty(0)
        self._used = np.zeros(0, dtype=bool)  # slot holds a device
        self._ring = 2  # open windows a device may have at once (a power of two)
        self._alloc_cells(0)
        self._next_uid = 0
        # Window index as integer division of microseconds: exact for whole-second lengths (see `_common`).
        self._length_us = int(cfg.length_s) * 1_000_000 if float(cfg.length_s).is_integer() else 0
        self._newest = np.empty(0, dtype=np.int64)  # scratch per slot for `_common`, _NONE between calls
        self._log: list[_Chunk] = []  # (window uid, ts_us) counted in open windows, packed (`_pack`)
        self._log_len = 0
        self._log_limit = 65_536  # compact beyond this (see `_compact_log`)

    # -- state layout -----------------------------------------------------------------------------------
    def _alloc_cells(self, cells: int) -> None:
        self._uid = np.full(cells, -1, dtype=np.int64)  # -1: free
        self._idx = np.full(cells, _NONE, dtype=np.int64)  # _NONE: free
        self._count = np.zeros(cells, dtype=np.int64)
        self._last = np.full(cells, -np.inf)
        self._stats = np.repeat(_EMPTY[None], cells, axis=0)  # (cells, 6, M): see _N .. _MAX

    def _cell_arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self._uid,
            self._idx,
            self._count,
            self._last,
            self._stats,
        )

    def _set_cell_arrays(self, arrays: tuple[np.ndarray, ...]) -> None:
        (
            self._uid,
            self._idx,
            self._count,
            self._last,
            self._stats,
        ) = arrays

    def _clear_cells(self, cells: np.ndarray) -> None:
        self._uid[cells] = -1
        self._idx[cells] = _NONE
        self._count[cells] = 0
        self._last[cells] = -np.inf
        self._stats[cells] = _EMPTY

    def _grow_slots(self, need: int) -> None:
        cap = len(self._max_ts)
        if need <= cap:
            return
        new = max(need, cap + cap // 4, 64)  # 1.25x, not 2x: at 10 000 devices the cells are ~6 MB
        self._max_ts = np.concatenate([self._max_ts, np.full(new - cap, -np.inf)])
        self._seen_at = np.concatenate([self._seen_at, np.zeros(new - cap)])
        self._floor = np.concatenate([self._floor, np.full(new - cap, -np.inf)])
        self._used = np.concatenate([self._used, np.zeros(new - cap, dtype=bool)])
        self._newest = np.concatenate([self._newest, np.full(new - cap, _NONE)])
        old = self._cell_arrays()
        self._alloc_cells(new * self._ring)
        for dst, src in zip(self._cell_arrays(), old, strict=True):
            dst[: len(src)] = src

    def _grow_ring(self) -> None:
        """Twice the open windows per device: every open window moves to its cell in the wider ring (two
        indices apart from each other modulo r are apart modulo 2r too)."""
        old = self._cell_arrays()
        live = np.flatnonzero(old[0] >= 0)
        ring = self._ring * 2
        dest = (live // self._ring) * ring + old[1][live] % ring
        self._ring = ring
        self._alloc_cells(len(self._max_ts) * ring)
        for dst, src in zip(self._cell_arrays(), old, strict=True):
            dst[dest] = src[live]

    def _add_devices(self, ids: list[str], now: float) -> np.ndarray:
        new = [d for d in dict.fromkeys(ids) if d not in self.devices]
        self._grow_slots(len(self._names) + max(0, len(new) - len(self._free)))
        for d in new:
            slot = self._free.pop() if self._free else len(self._names)
            if slot == len(self._names):
                self._names.append(d)
            else:
                self._names[slot] = d
            self.devices[d] = slot
            self._used[slot] = True
            # No watermark yet: the first reading is never late.
            self._max_ts[slot] = -np.inf
            self._floor[slot] = -np.inf
            self._seen_at[slot] = now
        return lookup(self.devices, ids)

    def _watermark(self, slots: np.ndarray, now: float) -> np.ndarray:
        wm = self._max_ts[slots] - self.cfg.allowed_lateness_s + np.maximum(now - self._seen_at[slots], 0.0)
        return np.maximum(wm, self._floor[slots])

    # -- input ------------------------------------------------------------------------------------------
    def add(
        self, readings: Readings | Iterable[SensorReading], now: float
    ) -> tuple[Readings, list[tuple[SensorReading, float]], int, Sequence[WindowAgg]]:
        """-> (accepted, in arrival order; late with the watermark that judged them; duplicates; windows
        closed meanwhile)."""
        batch = readings if isinstance(readings, Readings) else Readings.from_rows(list(readings))
        n = len(batch)
        if not n:
            return batch, [], 0, []
        lateness = self.cfg.allowed_lateness_s
        slots = self._codes.slots(batch, self.devices, lambda ids: self._add_devices(ids, now))
        if self._length_us and self._common(batch, slots, now):
            return batch, [], 0, []

        # 1. by device, arrival order kept; the watermark each reading meets
        order = by_slot(slots)
        dev_of = slots[order]
        tu = batch.ts_us[order]
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(dev_of[1:], dev_of[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        grp = np.cumsum(head) - 1
        dev = dev_of[starts]
        wm0 = self._watermark(dev, now)
        newest = _running_max(tu, grp, len(starts))  # including each reading itself
        t = tu / 1e6
        if len(starts) == n:
            wm = wm0
            late = t < wm
        else:
            before = np.empty(n)
            before[1:] = newest[:-1] / 1e6
            before[starts] = -np.inf
            wm = np.maximum(wm0[grp], before - lateness)
            late = t < wm
        any_late = bool(late.any())

        # device state after the batch (late readings move nothing)
        top = np.maximum.reduceat(np.where(late, _NONE, tu) if any_late else tu, starts) / 1e6
        moved = top > self._max_ts[dev]
        mdev = dev[moved]
        self._max_ts[mdev] = top[moved]
        self._seen_at[mdev] = now
        self._floor[mdev] = wm0[moved]

        late_out: list[tuple[SensorReading, float]] = []
        if any_late:
            where = np.flatnonzero(late)
            pos = order[where]
            by_arrival = np.argsort(pos)
            pos, wm_late = pos[by_arrival], wm[where][by_arrival]
            late_out = [
                (row(d, u, v), w)
                for d, u, v, w in zip(
                    batch.device_id[pos].tolist(),
                    batch.ts_us[pos].tolist(),
                    batch.values[pos].tolist(),
                    wm_late.tolist(),
                    strict=True,
                )
            ]
            keep = np.flatnonzero(~late)
            order, tu, t, grp, newest = order[keep], tu[keep], t[keep], grp[keep], newest[keep]
        if not len(order):
            return batch.take(order), late_out, 0, []

        # 2. by (device, window), arrival order kept within each
        length = self.cfg.length_s
        widx = np.floor_divide(t, length).astype(np.int64)
        same_dev = grp[1:] == grp[:-1]
        if (same_dev & (widx[1:] < widx[:-1])).any():
            by_window = np.lexsort((widx, grp))  # stable: arrival order kept within a window
            order, tu, t, grp, newest, widx = (a[by_window] for a in (order, tu, t, grp, newest, widx))
            same_dev = grp[1:] == grp[:-1]
        wstarts, wg, cells, exists = self._window_groups(widx, grp, dev, same_dev)

        # repeats: only a reading not newer than all before it in its window can be one
        rising = (t[1:] > t[:-1]) | (wg[1:] != wg[:-1])
        stale = exists & (t[wstarts] <= self._last[cells])
        dups = 0
        if not rising.all() or stale.any():
            repeat = self._repeats(tu, wg, wstarts, cells, exists, rising, stale)
            dups = int(repeat.sum())
            if dups:
                keep = np.flatnonzero(~repeat)
                order, tu, t, grp, newest, widx = (a[keep] for a in (order, tu, t, grp, newest, widx))
                if not len(order):
                    return batch.take(order), late_out, dups, []
                same_dev = grp[1:] == grp[:-1]
                wstarts, wg, cells, exists = self._window_groups(widx, grp, dev, same_dev)

        # 3. each window's share of the batch
        counts = np.diff(wstarts, append=len(order))
        last = np.maximum.reduceat(t, wstarts)
        held = np.ascontiguousarray(np.take(self._stats, cells, axis=0).transpose(1, 2, 0))  # (6, M, groups)
        agg = _aggregate(np.take(batch.values.T, order, axis=1), wstarts, counts, held, exists)

        # 4. openings: the watermark when a device opened its last new window closes what it passed
        opened = ~exists
        closed: list[ClosedWindows] = []
        if opened.any():
            at = wstarts[opened]
            wm_open = np.maximum(wm0[grp[at]], newest[at] / 1e6 - lateness)
            close_at = np.full(len(dev), -np.inf)
            np.maximum.at(close_at, grp[at], wm_open)
            ends = widx[wstarts] * length + length
            gone = opened & (ends <= close_at[grp[wstarts]])
            if gone.any():  # opened and closed inside this batch: never stored
                g = np.flatnonzero(gone)
                names = [self._names[s] for s in dev[grp[wstarts[g]]].tolist()]
                closed.append(_emit(names, widx[wstarts[g]], counts[g], _rows(agg, g), length, now))
            keep_new = opened & ~gone
        else:
            close_at = None
            keep_new = opened

        # 5. merge into open windows, close what the openings passed, store the new ones
        if exists.all():
            self._stats[cells] = _merge(held, agg).transpose(2, 0, 1)
            self._count[cells] += counts
            self._last[cells] = np.maximum(self._last[cells], last)
        elif exists.any():
            ex = np.flatnonzero(exists)
            c = cells[ex]
            self._stats[c] = _merge(np.take(held, ex, axis=2), np.take(agg, ex, axis=2)).transpose(2, 0, 1)
            self._count[c] += counts[ex]
            self._last[c] = np.maximum(self._last[c], last[ex])
        if close_at is not None:
            opening_dev = np.flatnonzero(close_at > -np.inf)
            ring = self._ring
            cand = (dev[opening_dev][:, None] * ring + np.arange(ring)).ravel()
            limit = np.repeat(close_at[opening_dev], ring)
            live = self._uid[cand] >= 0
            cand, limit = cand[live], limit[live]
            shut = cand[self._idx[cand] * length + length <= limit]
            if len(shut):
                closed.append(self._close_cells(shut, now))
        new = np.flatnonzero(keep_new)
        if len(new):
            at = wstarts[new]
            self._store_new(dev[grp[at]], widx[at], counts[new], last[new], _rows(agg, new))
            cells = self._cells(dev[grp[wstarts]], widx[wstarts])

        # 6. log the event times now counted in open windows (for the repeat check)
        in_open = self._uid[cells] >= 0
        in_open &= self._idx[cells] == widx[wstarts]
        if in_open.all():
            self._append_log(self._uid[cells][wg], tu)
        elif in_open.any():
            rows = in_open[wg]
            self._append_log(self._uid[cells][wg][rows], tu[rows])

        accepted = batch if len(order) == n else batch.take(np.sort(order))
        return accepted, late_out, dups, ClosedWindows.concat(closed)

    def _common(self, batch: Readings, slots: np.ndarray, now: float) -> bool:
        """The usual batch, in place and without grouping by device: every reading falls in a window its
        device already has open, none is late, none can be a repeat. -> False (nothing changed) when that is
        not so.

        Each reading then goes straight into its window's running statistics with unbuffered indexed
        ufuncs (`np.add.at`, ...), which apply the values in arrival order: the reference's own arithmetic.
        The window index is `ts_us // length_us`, which equals `floor(ts_us / 1e6 / length_s)` for a
        whole-second length while event times are below 2**32 s (the schema ends them in 2030)."""
        tu = batch.ts_us
        widx = tu // self._length_us
        cell = slots * self._ring + (widx & (self._ring - 1))
        if not (self._idx[cell] == widx).all():
            return False  # a window to open
        t = tu / 1e6
        if not (t > self._last[cell]).all():
            return False  # not newer than its window's newest: maybe a repeat
        # Late: the watermark a reading meets is at most max(the device's at the start, its newest in the
        # batch - lateness); a reading at or above that bound is on time whatever came before it.
        lateness = self.cfg.allowed_lateness_s
        newest = self._newest
        np.maximum.at(newest, slots, tu)
        top = newest[slots] / 1e6
        newest[slots] = _NONE
        wm0 = self._watermark(slots, now)
        if not (t >= np.maximum(wm0, top - lateness)).all():
            return False
        # Repeats inside the batch: (window, event time) pairs must be distinct.
        base = int(tu.min())
        span = int(tu.max()) - base + 1
        if span * (len(self._uid) + 1) >= 1 << 62:
            return False
        key = np.sort(cell * span + (tu - base), kind="stable")  # runs of arrival order: a cheap merge
        if (key[1:] == key[:-1]).any():
            return False
        x = batch.values.T.ravel()  # (M * n,) measurement-major
        at = (np.arange(_M)[:, None] + cell * (6 * _M)).ravel()  # the (N, m) entry of each value's window
        stats = self._stats.reshape(-1)
        valid = x == x
        complete = bool(valid.all())
        fresh = stats[at] == 0
        if fresh.any() if complete else (fresh & valid).any():
            return False  # a measurement's first value in its window: it sets the window's shift
        # -- from here on, the batch is applied
        moved = top > self._max_ts[slots]
        dev = slots[moved]
        self._max_ts[dev] = top[moved]
        self._seen_at[dev] = now
        self._floor[dev] = wm0[moved]
        # Each field through a view that starts at it: `at` indexes every field, no shifted copies of it.
        d = x - stats[_SHIFT * _M :][at]
        if complete:
            np.add.at(stats, at, 1.0)
        else:
            d[~valid] = 0.0
            np.add.at(stats, at, valid)
        np.add.at(stats[_S1 * _M :], at, d)
        np.add.at(stats[_S2 * _M :], at, d * d)
        if complete:  # no NaN on either side (every window already has a value): plain min/max
            np.minimum.at(stats[_MIN * _M :], at, x)
            np.maximum.at(stats[_MAX * _M :], at, x)
        else:
            np.fmin.at(stats[_MIN * _M :], at, x)
            np.fmax.at(stats[_MAX * _M :], at, x)
        np.add.at(self._count, cell, 1)
        np.maximum.at(self._last, cell, t)
        self._append_log(self._uid[cell], tu)
        return True

    def _cells(self, slots: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return slots * self._ring + idx % self._ring

    def _window_groups(
        self, widx: np.ndarray, grp: np.ndarray, dev: np.ndarray, same_dev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows sorted by (device, window) -> (group starts, group of each row, cell, window is open)."""
        head = np.empty(len(widx), dtype=bool)
        head[0] = True
        np.not_equal(widx[1:], widx[:-1], out=head[1:])
        head[1:] |= ~same_dev
        wstarts = np.flatnonzero(head)
        wg = np.cumsum(head) - 1
        wix = widx[wstarts]
        cells = self._cells(dev[grp[wstarts]], wix)
        exists = (self._uid[cells] >= 0) & (self._idx[cells] == wix)
        return wstarts, wg, cells, exists

    def _repeats(
        self,
        tu: np.ndarray,
        wg: np.ndarray,
        wstarts: np.ndarray,
        cells: np.ndarray,
        exists: np.ndarray,
        rising: np.ndarray,
        stale: np.ndarray,
    ) -> np.ndarray:
        """Which rows repeat an event time already counted in their window (exact; only for the windows
        where a reading is not newer than everything before it)."""
        suspect = stale.copy()
        suspect[wg[1:][~rising]] = True
        groups = np.flatnonzero(suspect)
        known: dict[int, set[int]] = {}
        look = self._uid[cells[groups[exists[groups]]]]
        if len(look):
            for chunk in self._log:
                lu = _unpack(chunk[0], chunk[1])
                hit = np.isin(lu, look)
                if hit.any():
                    lt = _unpack(chunk[2], chunk[3])
                    for u, x in zip(lu[hit].tolist(), lt[hit].tolist(), strict=True):
                        known.setdefault(u, set()).add(x)
        out = np.zeros(len(tu), dtype=bool)
        ends = np.append(wstarts[1:], len(tu))
        for g in groups.tolist():
            seen = set(known.get(int(self._uid[cells[g]]), ())) if exists[g] else set()
            for r in range(wstarts[g], ends[g]):
                x = int(tu[r])
                if x in seen:
                    out[r] = True
                else:
                    seen.add(x)
        return out

    def _store_new(
        self, slots: np.ndarray, idx: np.ndarray, counts: np.ndarray, last: np.ndarray, agg: np.ndarray
    ) -> None:
        while True:
            cells = self._cells(slots, idx)
            if not (self._uid[cells] >= 0).any() and len(np.unique(cells)) == len(cells):
                break
            self._grow_ring()
        k = len(cells)
        self._uid[cells] = np.arange(self._next_uid, self._next_uid + k)
        self._next_uid += k
        self._idx[cells] = idx
        self._count[cells] = counts
        self._last[cells] = last
        self._stats[cells] = agg

    def _append_log(self, uids: np.ndarray, ts_us: np.ndarray) -> None:
        self._log.append((*_pack(uids), *_pack(ts_us)))
        self._log_len += len(uids)
        if self._log_len > self._log_limit:
            self._compact_log()

    def _compact_log(self) -> None:
        """Drop the entries of closed windows. The next compaction waits until the log has grown by twice
        what it kept plus 64k entries, so the work per entry stays constant and the log within 3x (+64k) of
        the readings in open windows. Windows close roughly in the order they opened (uids), so first whole
        chunks whose windows are all closed go, which is cheap and usually enough."""
        open_uids = self._uid[self._uid >= 0]
        oldest = int(open_uids.min()) if len(open_uids) else self._next_uid
        self._log = [c for c in self._log if len(c[1]) and c[0] + int(c[1].max()) >= oldest]
        self._log_len = sum(len(c[1]) for c in self._log)
        if self._log_len <= self._log_limit // 2:
            return
        kept = 0
        if self._log:  # chunk by chunk: the log is never held unpacked
            live = self._uid[self._uid >= 0]
            low = min(c[0] + int(c[1].min()) for c in self._log)
            alive = None
            if self._next_uid - low <= 4 * self._log_len + 4096:  # uids are dense: a table instead of a search
                alive = np.zeros(self._next_uid - low, dtype=bool)
                alive[live[live >= low] - low] = True
            log = []
            for ub, uo, tb, to in self._log:
                lu = _unpack(ub, uo)
                keep = alive[lu - low] if alive is not None else np.isin(lu, live)
                if keep.all():
                    log.append((ub, uo, tb, to))
                elif keep.any():
                    log.append((ub, uo[keep], tb, to[keep]))
            self._log = log
            kept = sum(len(c[1]) for c in log)
        self._log_len = kept
        self._log_limit = 2 * kept + 65_536

    # -- closing ----------------------------------------------------------------------------------------
    def _close_cells(self, cells: np.ndarray, now: float) -> ClosedWindows:
        cells = cells[np.lexsort((self._idx[cells], cells // self._ring))]
        names = [self._names[s] for s in (cells // self._ring).tolist()]
        stats = np.take(self._stats, cells, axis=0)
        out = _emit(names, self._idx[cells], self._count[cells], stats, self.cfg.length_s, now)
        self._clear_cells(cells)
        return out

    def close_due(self, now: float) -> Sequence[WindowAgg]:
        """Close every window whose device watermark has passed its end; forget long-silent devices."""
        live = np.flatnonzero(self._uid >= 0)
        out: Sequence[WindowAgg] = []
        if len(live):
            wm = self._watermark(live // self._ring, now)
            due = live[self._idx[live] * self.cfg.length_s + self.cfg.length_s <= wm]
            if len(due):
                out = self._close_cells(due, now)
        self._expire(now)
        return out

    def _expire(self, now: float) -> None:
        if not self.devices:
            return
        idle = self._used & (now - self._seen_at > self.cfg.device_ttl_s)
        if not idle.any():
            return
        open_per_slot = np.bincount(np.flatnonzero(self._uid >= 0) // self._ring, minlength=len(idle))
        gone = np.flatnonzero(idle & (open_per_slot == 0))
        for slot in gone.tolist():
            del self.devices[self._names[slot]]  # type: ignore[arg-type]
            self._names[slot] = None
            self._free.append(slot)
        self._used[gone] = False
        if len(gone):
            self._codes.forget()
            self._compact_log()

    def close_all(self, now: float) -> Sequence[WindowAgg]:
        """End of input: emit every open window."""
        live = np.flatnonzero(self._uid >= 0)
        out = self._close_cells(live, now) if len(live) else []
        self._log, self._log_len = [], 0
        return out

    @property
    def open_windows(self) -> int:
        return int((self._uid >= 0).sum())

    # -- recovery ---------------------------------------------------------------------------------------
    def snapshot(self, now: float) -> bytes:
        """An immutable copy. Watermarks are frozen at `now`; on restore system time restarts from the
        restore moment, so downtime does not make the backlog late."""
        names = list(self.devices)
        slots = np.fromiter(self.devices.values(), dtype=np.int64, count=len(names))
        floor = self._watermark(slots, now)
        self._floor[slots] = floor
        live = np.flatnonzero(self._uid >= 0)
        renumber = np.full(len(self._max_ts), -1, dtype=np.int64)
        renumber[slots] = np.arange(len(names))  # slots become 0..k-1 in `names` order
        cells = {
            "slot": renumber[live // self._ring],
            **{k: a[live] for k, a in zip(_CELL_FIELDS, self._cell_arrays(), strict=True)},
        }
        # The log as it is held, packed chunk by chunk: joining it first would hold it twice beside the
        # pickle (at 10 000 devices ~6 MB each, once per Bytewax epoch: bench/iot_rss.py).
        log = list(self._log)
        state: dict[str, Any] = {
            "names": names,
            "floor": floor,
            "seen_at": self._seen_at[slots],
            "cells": cells,
            "next_uid": self._next_uid,
            "log": log,
        }
        return dump_state(state, _STATE_VERSION)

    @classmethod
    def restore(cls, cfg: WindowConfig, state: bytes | None, now: float) -> ShardWindows:
        out = cls(cfg)
        if state is None:
            return out
        data = load_state(state, _STATE_VERSION, "window")
        names: list[str] = data["names"]
        k = len(names)
        out._grow_slots(k)
        out._names = list(names)
        out.devices = {d: i for i, d in enumerate(names)}
        out._used[:k] = True
        # Resume the watermark where the snapshot froze it and let system time run from now.
        out._floor[:k] = data["floor"]
        out._max_ts[:k] = data["floor"] + cfg.allowed_lateness_s
        out._seen_at[:k] = now
        out._place(data["cells"])
        out._next_uid = data["next_uid"]
        log = data["log"]
        if isinstance(log, tuple):  # written before the log was packed: one (uids, ts_us) pair
            log = [(*_pack(log[0]), *_pack(log[1]))]
        chunks = [c for c in log if len(c[1])]
        if chunks:
            n = sum(len(c[1]) for c in chunks)
            out._log, out._log_len, out._log_limit = chunks, n, 2 * n + 65_536
        return out

    def _place(self, cells: dict[str, np.ndarray]) -> None:
        """Open windows from a snapshot into this state's cells (growing the ring as needed)."""
        if not len(cells["uid"]):
            return
        while True:
            dest = self._cells(cells["slot"], cells["idx"])
            if len(np.unique(dest)) == len(dest):
                break
            self._ring *= 2
            self._alloc_cells(len(self._max_ts) * self._ring)
        for k, a in zip(_CELL_FIELDS, self._cell_arrays(), strict=True):
            a[dest] = cells[k]


_CELL_FIELDS = ("uid", "idx", "count", "last", "stats")
_Chunk = tuple[int, np.ndarray, int, np.ndarray]  # uid base, uid offsets, ts_us base, ts_us offsets
_I32 = 1 << 31


def _pack(values: np.ndarray) -> tuple[int, np.ndarray]:
    """int64 values as (base, offsets from it): int32 offsets where they fit, as a batch's event times (a
    few seconds) and window uids (the windows open at once) do, so the repeat log takes half the memory;
    int64 otherwise (a backlog spanning more than 35 minutes)."""
    if not len(values):
        return 0, np.empty(0, np.int32)
    base = int(values.min())
    if int(values.max()) - base < _I32:
        return base, (values - base).astype(np.int32)
    return 0, np.asarray(values, dtype=np.int64)


def _unpack(base: int, offsets: np.ndarray) -> np.ndarray:
    return offsets.astype(np.int64) + base


def _running_max(tu: np.ndarray, grp: np.ndarray, groups: int) -> np.ndarray:
    """Running maximum of `tu` within each run of equal `grp` (rows sorted by group)."""
    if groups == len(tu):
        return tu
    base = int(tu.min())
    rel = tu - base
    span = int(rel.max()) + 1
    if span * groups < 1 << 62:
        lift = grp * span
        return np.maximum.accumulate(rel + lift) - lift + base
    out = np.empty_like(tu)  # event times spanning decades in one batch: per group
    bounds = np.flatnonzero(np.diff(grp)) + 1
    for a, b in zip(np.concatenate([[0], bounds]).tolist(), np.concatenate([bounds, [len(tu)]]).tolist(), strict=True):
        out[a:b] = np.maximum.accumulate(tu[a:b])
    return out


def _aggregate(
    values: np.ndarray, wstarts: np.ndarray, counts: np.ndarray, held: np.ndarray, exists: np.ndarray
) -> np.ndarray:
    """Each window group's share of the batch as statistics (6, M, groups): count, shift, sum(x - shift),
    sum((x - shift)^2), min, max per measurement. `values` is (M, rows), rows sorted by group and in
    arrival order within one; the shift is the open window's (`held`, where `exists` and it has values) or
    the group's first value. Groups are a few rows each in a stream (a device's readings in one batch), so
    each depth (the k-th row of every group that has one) is a few operations over all groups; a deep
    group (a backlog) reduces by segment instead. Field-major, so every operation runs over contiguous
    memory."""
    depth = int(counts.max())
    if depth > 8:
        return _aggregate_segments(values, wstarts, counts, held, exists)
    groups = len(wstarts)
    first = np.take(values, wstarts, axis=1)
    present = ~np.isnan(first)
    out = np.empty((6, _M, groups))
    out[_N] = present
    out[_MIN] = first
    out[_MAX] = first
    had = held[_N] > 0
    had &= exists
    shift = out[_SHIFT]
    np.copyto(shift, np.where(had, held[_SHIFT], first))
    d = np.where(present, first - shift, 0.0)
    out[_S1] = d
    out[_S2] = d * d
    complete = bool(present.all())
    for k in range(1, depth):
        g = np.flatnonzero(counts > k)
        x = np.full((_M, groups), np.nan)
        x[:, g] = np.take(values, wstarts[g] + k, axis=1)
        ok = ~np.isnan(x)
        if not complete:  # a measurement absent so far takes its shift from its first value
            np.copyto(shift, x, where=(out[_N] == 0) & ok & ~had)
        d = np.where(ok, x - shift, 0.0)
        out[_N] += ok
        out[_S1] += d
        out[_S2] += d * d
        np.fmin(out[_MIN], x, out=out[_MIN])
        np.fmax(out[_MAX], x, out=out[_MAX])
    return out


def _aggregate_segments(
    values: np.ndarray, wstarts: np.ndarray, counts: np.ndarray, held: np.ndarray, exists: np.ndarray
) -> np.ndarray:
    """`_aggregate` for deep groups: one reduction per segment."""
    n = values.shape[1]
    valid = ~np.isnan(values)
    at = np.where(valid, np.arange(n), n)
    first = np.take_along_axis(values, np.minimum(np.minimum.reduceat(at, wstarts, axis=1), n - 1), axis=1)
    out = np.empty((6, _M, len(wstarts)))
    out[_N] = np.add.reduceat(valid, wstarts, axis=1)
    out[_SHIFT] = np.where((held[_N] > 0) & exists, held[_SHIFT], first)
    d = np.where(valid, values - np.repeat(out[_SHIFT], counts, axis=1), 0.0)
    out[_S1] = np.add.reduceat(d, wstarts, axis=1)
    out[_S2] = np.add.reduceat(d * d, wstarts, axis=1)
    out[_MIN] = np.fmin.reduceat(values, wstarts, axis=1)
    out[_MAX] = np.fmax.reduceat(values, wstarts, axis=1)
    return out


def _merge(held: np.ndarray, add: np.ndarray) -> np.ndarray:
    """Open windows' statistics (6, M, groups) with a batch's share added (`add` is shifted by the
    window's shift wherever the window already had values)."""
    out = held.copy()
    out[_N] += add[_N]
    out[_SHIFT] = add[_SHIFT]
    out[_S1] += add[_S1]
    out[_S2] += add[_S2]
    np.fmin(out[_MIN], add[_MIN], out=out[_MIN])
    np.fmax(out[_MAX], add[_MAX], out=out[_MAX])
    return out


def _rows(stats: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Field-major statistics (6, M, groups) -> the chosen groups as rows (k, 6, M)."""
    return np.take(stats, groups, axis=2).transpose(2, 0, 1)


def _emit(
    names: list[str | None], idx: np.ndarray, count: np.ndarray, stats: np.ndarray, length: float, now: float
) -> ClosedWindows:
    """Closed windows (as columns, read as `WindowAgg`s): per measurement (count, mean, min, max, sample
    std)."""
    n, s1, s2 = stats[:, _N], stats[:, _S1], stats[:, _S2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = stats[:, _SHIFT] + s1 / n
        std = np.sqrt(np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1))
    start = idx * length
    return ClosedWindows(
        names,  # type: ignore[arg-type]  # a slot with an open window always has its name
        start,
        start + length,
        np.asarray(count, dtype=np.int64),
        (n.astype(np.int64), mean, stats[:, _MIN], stats[:, _MAX], std),
        np.full(len(names), now),
    )


def window_columns() -> list[str]:
    """Column names of `readings_1m` after device_id, window_start, window_end, count."""
    return [f"{m}_{s}" for m in MEASUREMENTS for s in ("count", "mean", "min", "max", "std")]
