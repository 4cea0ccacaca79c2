"""The `ewz` detector over whole batches with numpy: the River form (`detectors.EWZScore` inside
`stream.py`'s spike/stuck rules) computed for many devices at once, with the same results bit for bit.

Per device and measurement the state is River's: an exponentially weighted mean `m` and mean of squares
`q` (`EWMean`/`EWVar`: the first value learned sets both; then `m <- a*y + (1-a)*m`; variance `q - m*m`),
the number of values learned, and the spike/stuck counters. Each value is scored before it is learned,
and whether it is learned depends on its score, so a device's values must go in order. A batch is
therefore cut into *rounds*: round r holds the r-th reading of every device that has one, and a round is
one set of numpy operations over all its (device, measurement) pairs (the same IEEE operations in the same
order as River's Rust and our Python, so the floats are identical). A round that covers most of the shard's
devices runs in place over the whole state (a device without a reading in it gets NaN, which changes
nothing), others on the state of their devices gathered; either way into reused work arrays. A device with
more readings in the batch than there are devices left to share a round finishes in a plain Python loop
over the same state (the same arithmetic), because a round costs ~40 numpy calls whatever its width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.connectors.messages import MEASUREMENTS

M = len(MEASUREMENTS)
ROUND_MIN = 24  # devices below which a round is cheaper as a Python loop (measured)


@dataclass(frozen=True)
class EwzParams:
    alpha: float
    warmup: int
    threshold: float
    patience: int
    stuck_after: int
    min_std: tuple[float, ...]  # per measurement
    stuck_on: tuple[bool, ...]  # per measurement
    active: tuple[bool, ...]  # per measurement: `ewz` chosen for it


# One flagged value: (row, measurement index, 'spike' | 'stuck', value, score, expected).
Hit = tuple[int, int, str, float, float, float]
# The state fields, each a flat array indexed by measurement * capacity + slot (so a measurement's values are
# contiguous, and a batch's values, measurement-major, scatter into them row by row); counters and flags as
# exact floats. The mean and the mean of squares share one (2, M * capacity) array, so one set of operations
# updates both.
FIELDS = ("mean", "sq", "learned", "last", "repeats", "consecutive", "flagged")
_FRESH = (0.0, 0.0, 0.0, np.nan, 0.0, 0.0, 0.0)


class EwzState:
    """The detector state of many devices: `mq[0 | 1][m * cap + slot]` (mean, mean of squares) and
    `f[field][m * cap + slot]` for the other fields."""

    def __init__(self, params: EwzParams) -> None:
        self.p = params
        self.cap = 0
        self.mq = np.zeros((2, 0))
        self.f = [np.zeros(0) for _ in FIELDS[2:]]
        self._base = np.zeros((M, 1), dtype=np.int64)  # m * cap
        self._tiled: dict[int, tuple[np.ndarray, ...]] = {}
        self._floats = [np.empty(0)]
        self._bools: list[np.ndarray] = []
        self._pairs: list[np.ndarray] = []
        self._views: dict[int, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = {}

    def grow(self, slots: int) -> None:
        if slots <= self.cap:
            return
        extra = slots - self.cap

        def wider(a: np.ndarray, fill: float) -> np.ndarray:
            return np.concatenate([a.reshape(M, self.cap), np.full((M, extra), fill)], axis=1).ravel()

        self.mq = np.stack([wider(self.mq[0], 0.0), wider(self.mq[1], 0.0)])
        self.f = [wider(a, v) for a, v in zip(self.f, _FRESH[2:], strict=True)]
        self.cap = slots
        self._base = np.arange(M, dtype=np.int64)[:, None] * slots
        self._tiled.clear()

    def _flat(self, slots: np.ndarray) -> np.ndarray:
        """Positions of these slots' values, measurement-major: (M, len(slots)) flattened."""
        return (self._base + np.asarray(slots, dtype=np.int64)).ravel()

    def _fields(self) -> list[np.ndarray]:
        return [self.mq[0], self.mq[1], *self.f]

    def reset(self, slots: list[int]) -> None:
        """Fresh state for (re)used slots."""
        if slots:
            at = self._flat(np.asarray(slots))
            for a, v in zip(self._fields(), _FRESH, strict=True):
                a[at] = v

    def export(self, slots: np.ndarray) -> np.ndarray:
        """(field, slot * M + measurement) for these slots (the snapshot layout)."""
        at = self._flat(slots)
        return np.stack([a[at].reshape(M, -1).T.ravel() for a in self._fields()])

    def load(self, data: np.ndarray, slots: np.ndarray) -> None:
        at = self._flat(slots)
        for a, v in zip(self._fields(), data, strict=True):
            a[at] = np.asarray(v).reshape(-1, M).T.ravel()

    def _tile(self, k: int) -> tuple[np.ndarray, ...]:
        """Per-measurement parameters for k devices, measurement-major: min_std, the repeat count that makes a
        stuck sensor (inf where stuck sensors are not reported), active."""
        out = self._tiled.get(k)
        if out is None:
            p = self.p
            stuck_at = [float(p.stuck_after) if on else np.inf for on in p.stuck_on]
            out = (np.repeat(p.min_std, k), np.repeat(stuck_at, k), np.repeat(p.active, k))
            if len(self._tiled) > 8:
                self._tiled.clear()
            self._tiled[k] = out
        return out

    def run(
        self, dev: np.ndarray, order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, values: np.ndarray
    ) -> list[Hit]:
        """Score then learn a batch. Group g is the rows order[starts[g] : starts[g] + sizes[g]] of `values`
        (n, M), in arrival order, and belongs to slot dev[g]. -> the hits, with rows indexing `values`."""
        hits: list[Hit] = []
        if not len(sizes):
            return hits
        columns = values.T  # (M, n)
        deepest = int(sizes.max())
        r = 0
        with np.errstate(all="ignore"):
            while r < deepest:
                groups = np.flatnonzero(sizes > r) if r else None  # those with an r-th row
                width = len(sizes) if groups is None else len(groups)
                if width < ROUND_MIN:
                    break
                at = dev if groups is None else dev[groups]
                rows = order[starts + r if groups is None else starts[groups] + r]
                y = np.take(columns, rows, axis=1)  # (M, width)
                if 2 * width >= self.cap:
                    self._round_all(at, rows, y, hits)
                else:
                    self._round(at, rows, y, hits)
                r += 1
        if r < deepest:
            self._loop(dev, order, starts, sizes, values, r, hits)
        return hits

    def _round(self, at: np.ndarray, rows: np.ndarray, y: np.ndarray, hits: list[Hit]) -> None:
        """One reading (`y`, (M, len(at))) of each of these devices (slots `at`), on their state gathered."""
        flat = self._flat(at)
        mq = np.take(self.mq, flat, axis=1)
        f = [a[flat] for a in self.f]
        y = y.ravel()
        stuck, spike, score = self._step(mq, f, y, len(at))
        self.mq[0, flat] = mq[0]
        self.mq[1, flat] = mq[1]
        for a, b in zip(self.f, f, strict=True):
            a[flat] = b
        if stuck is not None or spike is not None:
            self._hits(rows, None, y, mq[0], f[2], stuck, spike, score, hits)

    def _round_all(self, at: np.ndarray, rows: np.ndarray, y: np.ndarray, hits: list[Hit]) -> None:
        """`_round` on every slot's state in place: a slot without a reading in this round gets NaN, which
        changes nothing (cheaper than gathering and scattering when the round covers most slots)."""
        full = self._scratch(M * self.cap)[0][0]
        full.fill(np.nan)
        full.reshape(M, self.cap)[:, at] = y
        stuck, spike, score = self._step(self.mq, self.f, full, self.cap)
        if stuck is not None or spike is not None:
            self._hits(rows, at, full, self.mq[0], self.f[2], stuck, spike, score, hits)

    def _scratch(self, k: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Reused work arrays for a step over k values (float, bool, float pairs), so a round touches the
        same memory every time instead of ~1 MB of fresh temporaries."""
        views = self._views.get(k)
        if views is None:
            if len(self._floats[0]) < k:
                self._floats = [np.empty(k) for _ in range(5)]
                self._bools = [np.empty(k, dtype=bool) for _ in range(9)]
                self._pairs = [np.empty((2, k)) for _ in range(3)]
                self._views.clear()
            elif len(self._views) > 16:
                self._views.clear()
            views = self._views[k] = (
                [a[:k] for a in self._floats],
                [a[:k] for a in self._bools],
                [a[:, :k] for a in self._pairs],
            )
        return views

    def _step(
        self, mq: np.ndarray, f: list[np.ndarray], y: np.ndarray, devices: int
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """River's arithmetic, elementwise over (slot, measurement) pairs and in place on the state `mq`, `f`:
        the same IEEE operations in the same order, so the same floats. -> (stuck, spike (None where none),
        score), in work arrays the next step reuses."""
        p = self.p
        k = len(y)
        m, q = mq
        n, last, rep, cons, flag = f
        floor, stuck_at, active = self._tile(devices)
        (_, sd, score, t1, _), (ok, same, fresh, held, stuck, go, over, spike, learn), pairs = self._scratch(k)
        np.equal(y, y, out=ok)  # False for NaN
        if not all(p.active):
            ok &= active
        np.equal(y, last, out=same)  # False for NaN on either side, so same implies ok
        np.logical_xor(ok, same, out=fresh)  # ok and not same
        rep += same
        np.copyto(rep, 1.0, where=fresh)
        np.greater(flag, 0.0, out=held)
        np.greater(held, fresh, out=held)  # flagged and not fresh
        np.greater_equal(rep, stuck_at, out=stuck)
        stuck &= same
        np.greater(stuck, held, out=stuck)
        np.greater_equal(rep, 3.0, out=go)
        np.greater(ok, go, out=go)  # a repeat (rep >= 3 means same, where ok) teaches nothing
        np.multiply(m, m, out=sd)
        np.subtract(q, sd, out=sd)
        np.maximum(sd, 0.0, out=sd)
        np.sqrt(sd, out=sd)
        np.fmax(sd, floor, out=sd)  # the floor where sd is not above it
        np.subtract(y, m, out=score)
        np.abs(score, out=score)
        np.divide(score, sd, out=score)
        np.less(n, p.warmup, out=spike)  # (spike as scratch)
        np.copyto(score, 0.0, where=spike)
        np.greater_equal(score, p.threshold, out=over)
        over &= go
        np.add(cons, 1.0, out=t1)  # +1 when over, 0 when learned, else kept (over implies go)
        t1 *= over
        np.copyto(cons, t1, where=go)
        np.less_equal(cons, p.patience, out=spike)
        spike &= over
        np.greater(go, spike, out=learn)
        first = over  # (over is done with)
        np.equal(n, 0.0, out=first)
        yy, mixed, part = pairs
        yy[0] = y
        np.multiply(y, y, out=yy[1])
        np.multiply(yy, p.alpha, out=mixed)
        np.multiply(mq, 1 - p.alpha, out=part)
        mixed += part  # a * y + b * m, and a * y * y + b * q
        np.copyto(mixed, yy, where=first)
        np.copyto(mq, mixed, where=learn)
        n += learn
        np.copyto(last, y, where=fresh)
        np.add(held, stuck, out=flag)  # disjoint
        return stuck if stuck.any() else None, spike if spike.any() else None, score

    def _hits(
        self,
        rows: np.ndarray,
        at: np.ndarray | None,
        y: np.ndarray,
        mean: np.ndarray,
        rep: np.ndarray,
        stuck: np.ndarray | None,
        spike: np.ndarray | None,
        score: np.ndarray,
        hits: list[Hit],
    ) -> None:
        """Hits as (row, measurement, kind, value, score, expected). Position i of the step's arrays is
        measurement i // w of the round's device i % w (`at` None, w its devices), or of the device in slot
        i % capacity (`at`: the round's slots)."""
        width = len(rows) if at is None else self.cap
        for kind, mask, size in (("stuck", stuck, rep), ("spike", spike, score)):
            if mask is None:
                continue
            where = np.flatnonzero(mask)
            device = where % width
            row = rows[device] if at is None else rows[np.searchsorted(at, device)]  # `at` is sorted
            # a flagged value is not learned: `mean` is still the mean it was scored against
            for r, m, v, x, e in zip(
                row.tolist(),
                (where // width).tolist(),
                y[where].tolist(),
                size[where].tolist(),
                mean[where].tolist(),
                strict=True,
            ):
                hits.append((r, m, kind, v, x, e))

    def _loop(
        self,
        dev: np.ndarray,
        order: np.ndarray,
        starts: np.ndarray,
        sizes: np.ndarray,
        values: np.ndarray,
        r: int,
        hits: list[Hit],
    ) -> None:
        """Rows from rank r on of the devices that have them, one at a time (the same arithmetic)."""
        p = self.p
        a, b = p.alpha, 1 - p.alpha
        warmup, threshold, patience, stuck_after = p.warmup, p.threshold, p.patience, p.stuck_after
        cols = [i for i in range(M) if p.active[i]]
        min_std, stuck_on = p.min_std, p.stuck_on
        for g in np.flatnonzero(sizes > r).tolist():
            slot = int(dev[g])
            at = slice(slot, None, self.cap)  # its M values
            m, q, n, last, rep, cons, flag = (field[at].tolist() for field in self._fields())
            rows = order[int(starts[g]) + r : int(starts[g]) + int(sizes[g])].tolist()
            for row, y_row in zip(rows, values[rows].tolist(), strict=True):
                for i in cols:
                    y = y_row[i]
                    if y != y:
                        continue
                    if y == last[i]:
                        rep[i] += 1
                        if stuck_on[i] and rep[i] >= stuck_after and not flag[i]:
                            flag[i] = 1.0
                            hits.append((row, i, "stuck", y, float(rep[i]), m[i]))
                        if rep[i] >= 3:
                            continue
                    else:
                        last[i] = y
                        rep[i] = 1.0
                        flag[i] = 0.0
                    if n[i] < warmup:
                        score = 0.0
                    else:
                        sd = math.sqrt(max(q[i] - m[i] * m[i], 0.0))
                        den = sd if sd > min_std[i] else min_std[i]
                        score = abs(y - m[i]) / den if den else (math.inf if y != m[i] else 0.0)
                    if score >= threshold:
                        cons[i] += 1
                        if cons[i] <= patience:
                            hits.append((row, i, "spike", y, score, m[i]))
                            continue
                    else:
                        cons[i] = 0.0
                    if n[i] == 0:
                        m[i] = y
                        q[i] = y * y
                    else:
                        m[i] = a * y + b * m[i]
                        q[i] = a * (y * y) + b * q[i]
                    n[i] += 1
            for field, v in zip(self._fields(), (m, q, n, last, rep, cons, flag), strict=True):
                field[at] = v


def params_from(cfg: Any, active: list[bool]) -> EwzParams:
    """EwzParams from a `DetectorConfig`."""
    return EwzParams(
        alpha=cfg.fading_factor,
        warmup=cfg.warmup,
        threshold=cfg.threshold,
        patience=cfg.patience,
        stuck_after=cfg.stuck_after,
        min_std=tuple(float(cfg.min_std.get(m, 0.0)) for m in MEASUREMENTS),
        stuck_on=tuple(m in cfg.stuck_measurements for m in MEASUREMENTS),
        active=tuple(active),
    )
