"""The `ewz` detector over whole batches with numpy: the River form (`detectors.EWZScore` inside
`stream.py`'s spike/stuck rules) computed for many devices at once, with the same results bit for bit.

Per device and measurement the state is River's: an exponentially weighted mean `m` and mean of squares
`q` (`EWMean`/`EWVar`: the first value learned sets both; then `m <- a*y + (1-a)*m`; variance `q - m*m`),
the number of values learned, and the spike/stuck counters. Each value is scored before it is learned,
and whether it is learned depends on its score, so a device's values must go in order. A batch is
therefore cut into *rounds*: round r holds the r-th reading of every device that has one, and a round is
one set of numpy operations over all its (device, measurement) pairs (the same IEEE operations in the same
order as River's Rust and our Python, so the floats are identical). A device with more readings in the
batch than there are devices left to share a round finishes in a plain Python loop over the same state
(the same arithmetic), because a round costs ~40 numpy calls whatever its width.
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
# The state fields, each a flat array indexed by slot * M + measurement; counters and flags as exact floats
# (one dtype, and numpy's 1-D gathers and scatters are the cheap ones).
FIELDS = ("mean", "sq", "learned", "last", "repeats", "consecutive", "flagged")
_FRESH = (0.0, 0.0, 0.0, np.nan, 0.0, 0.0, 0.0)


class EwzState:
    """The detector state of many devices: `f[field][slot * M + measurement]`."""

    def __init__(self, params: EwzParams) -> None:
        self.p = params
        self.f = [np.zeros(0) for _ in FIELDS]
        self._active = np.array(params.active)
        self._min_std = np.array(params.min_std, dtype=np.float64)
        self._stuck_on = np.array(params.stuck_on)
        self._cols = np.arange(M)
        self._tiled = (np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))

    def grow(self, slots: int) -> None:
        have = len(self.f[0]) // M
        if slots > have:
            self.f = [np.concatenate([a, np.full((slots - have) * M, v)]) for a, v in zip(self.f, _FRESH, strict=True)]

    def _flat(self, slots: np.ndarray) -> np.ndarray:
        return (np.asarray(slots, dtype=np.int64)[:, None] * M + self._cols).ravel()

    def reset(self, slots: list[int]) -> None:
        """Fresh state for (re)used slots."""
        if slots:
            at = self._flat(np.asarray(slots))
            for a, v in zip(self.f, _FRESH, strict=True):
                a[at] = v

    def export(self, slots: np.ndarray) -> np.ndarray:
        at = self._flat(slots)
        return np.stack([a[at] for a in self.f])

    def load(self, data: np.ndarray, slots: np.ndarray) -> None:
        at = self._flat(slots)
        for a, v in zip(self.f, data, strict=True):
            a[at] = v

    def _per_value(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """min_std, stuck_on and active repeated for k readings (cached at the widest seen)."""
        if len(self._tiled[0]) < k * M:
            reps = max(k, 64)
            self._tiled = (np.tile(self._min_std, reps), np.tile(self._stuck_on, reps), np.tile(self._active, reps))
        return self._tiled[0][: k * M], self._tiled[1][: k * M], self._tiled[2][: k * M]

    def run(self, dev: np.ndarray, values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> list[Hit]:
        """Score then learn a batch. Rows are grouped by device (arrival order within), group g is rows
        starts[g] .. starts[g] + sizes[g] - 1 of `values` (n, M) and belongs to slot dev[g]. -> the hits,
        with rows indexing `values`."""
        hits: list[Hit] = []
        if not len(sizes):
            return hits
        by_size = np.argsort(-sizes, kind="stable")
        sorted_sizes = sizes[by_size]
        flat = values.ravel()
        valid = ~np.isnan(flat)
        if not self._active.all():
            valid &= self._per_value(len(values))[2]
        # Round r takes the first `width` groups by size: their state and rows are prefixes of these.
        at = self._flat(dev[by_size])
        src = self._flat(starts[by_size])
        r = 0
        deepest = int(sorted_sizes[0])
        with np.errstate(all="ignore"):
            while r < deepest:
                width = int(np.searchsorted(-sorted_sizes, -r, side="left"))  # groups with more than r rows
                if width < ROUND_MIN:
                    break
                k = width * M
                self._round(at[:k], src[:k] + r * M, flat, valid, hits)
                r += 1
        if r < deepest:
            self._loop(dev, values, starts, sizes, r, hits)
        return hits

    def _round(self, at: np.ndarray, src: np.ndarray, flat: np.ndarray, valid: np.ndarray, hits: list[Hit]) -> None:
        """One reading of each of these devices (state at `at`, values at `src`): River's arithmetic,
        elementwise."""
        p = self.p
        y = flat[src]
        ok = valid[src]
        f = self.f
        m, q, n, last, rep, cons, flag = (a[at] for a in f)
        floor, stuck_on, _ = self._per_value(len(at) // M)
        same = y == last  # False for NaN on either side
        fresh = ok & ~same
        rep = np.where(same, rep + 1, np.where(fresh, 1.0, rep))
        held = (flag > 0) & ~fresh
        stuck = same & (rep >= p.stuck_after) & ~held & stuck_on
        go = ok & ~(same & (rep >= 3))  # a repeated value teaches nothing and would collapse the variance
        sd = np.sqrt(np.maximum(q - m * m, 0.0))
        score = np.where(n >= p.warmup, np.abs(y - m) / np.where(sd > floor, sd, floor), 0.0)
        over = go & (score >= p.threshold)
        cons = np.where(over, cons + 1, np.where(go, 0.0, cons))
        spike = over & (cons <= p.patience)
        learn = go & ~spike
        a, b = p.alpha, 1 - p.alpha
        first = n == 0
        yy = y * y
        f[0][at] = np.where(learn, np.where(first, y, a * y + b * m), m)
        f[1][at] = np.where(learn, np.where(first, yy, a * yy + b * q), q)
        f[2][at] = n + learn
        f[3][at] = np.where(fresh, y, last)
        f[4][at] = rep
        f[5][at] = cons
        f[6][at] = held | stuck
        if stuck.any():
            for i in np.flatnonzero(stuck).tolist():
                hits.append((int(src[i]) // M, i % M, "stuck", float(y[i]), float(rep[i]), float(m[i])))
        if spike.any():
            for i in np.flatnonzero(spike).tolist():
                hits.append((int(src[i]) // M, i % M, "spike", float(y[i]), float(score[i]), float(m[i])))

    def _loop(
        self, dev: np.ndarray, values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, r: int, hits: list[Hit]
    ) -> None:
        """Rows from rank r on of the devices that have them, one at a time (the same arithmetic)."""
        p = self.p
        a, b = p.alpha, 1 - p.alpha
        warmup, threshold, patience, stuck_after = p.warmup, p.threshold, p.patience, p.stuck_after
        cols = [i for i in range(M) if p.active[i]]
        min_std, stuck_on = p.min_std, p.stuck_on
        for g in np.flatnonzero(sizes > r).tolist():
            at = slice(int(dev[g]) * M, int(dev[g]) * M + M)
            m, q, n, last, rep, cons, flag = (field[at].tolist() for field in self.f)
            first_row = int(starts[g]) + r
            for k, row in enumerate(values[first_row : int(starts[g]) + int(sizes[g])].tolist()):
                for i in cols:
                    y = row[i]
                    if y != y:
                        continue
                    if y == last[i]:
                        rep[i] += 1
                        if stuck_on[i] and rep[i] >= stuck_after and not flag[i]:
                            flag[i] = 1.0
                            hits.append((first_row + k, i, "stuck", y, float(rep[i]), m[i]))
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
                            hits.append((first_row + k, i, "spike", y, score, m[i]))
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
            for field, v in zip(self.f, (m, q, n, last, rep, cons, flag), strict=True):
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
