"""Device slots of the keyed states (windows, detectors): looking a batch's devices up, and ordering its rows by
slot (the grouping step)."""

from __future__ import annotations

from operator import itemgetter

import numpy as np


def lookup(table: dict[str, int], keys: list[str]) -> np.ndarray:
    """table[key] for every key, as int64 (KeyError for one it lacks): one C-level call."""
    if len(keys) == 1:
        return np.array([table[keys[0]]], dtype=np.int64)
    return np.fromiter(itemgetter(*keys)(table), dtype=np.int64, count=len(keys))


def by_slot(slots: np.ndarray) -> np.ndarray:
    """The stable order of a batch's rows by slot (arrival order kept per slot): numpy's radix sort when the
    slots fit 16 bits (~3x faster than its merge sort on 2 000 rows), its merge sort otherwise."""
    if len(slots) and int(slots.max()) < 1 << 16 and int(slots.min()) >= 0:
        return np.argsort(slots.astype(np.uint16), kind="stable")
    return np.argsort(slots, kind="stable")
