"""Ordering a batch by device slot, the grouping step of the keyed states (windows, detectors)."""

from __future__ import annotations

import numpy as np


def by_slot(slots: np.ndarray) -> np.ndarray:
    """The stable order of a batch's rows by slot (arrival order kept per slot): numpy's radix sort when the
    slots fit 16 bits (~3x faster than its merge sort on 2 000 rows), its merge sort otherwise."""
    if len(slots) and int(slots.max()) < 1 << 16 and int(slots.min()) >= 0:
        return np.argsort(slots.astype(np.uint16), kind="stable")
    return np.argsort(slots, kind="stable")
