"""Device codes: small integers the decoder gives each device id, so the keyed steps (shard, windows, detectors)
find a batch's device slots with one array read instead of a dict lookup per reading (~23 ns each, three
times per reading).

A code means a device only under its *book* (`Book`: a random id per decoding thread and a generation), so
codes stay right whatever crosses a process boundary: a step that meets a book it does not know looks the
devices up by name, as without codes, and learns the codes' slots for the next batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.connectors.slots import lookup

if TYPE_CHECKING:
    from engine.connectors.messages import Readings

Book = tuple[int, int]  # (codebook id, generation)
_MAX_BOOKS = 8  # books a step remembers (one per decoding thread or process that feeds it)


class DeviceCodes:
    """Device id -> code (0, 1, 2, ... in order of first sight) for one decoding thread. Bounded: with more
    than `limit` ids known it starts a new generation (a new book), so the steps' tables stay small."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._id = int.from_bytes(os.urandom(8), "little")
        self._generation = 0
        # Each code as 8 little-endian bytes: one join makes a batch's codes an int64 array (numpy converts
        # Python ints one at a time, ~13 ns each; the join costs ~7).
        self.codes: dict[str, bytes] = {}

    @property
    def book(self) -> Book:
        return (self._id, self._generation)

    def known(self, ids: list[str]) -> np.ndarray:
        """The codes of ids already known (KeyError otherwise): one C-level pass."""
        if len(ids) == 1:
            return np.frombuffer(self.codes[ids[0]], dtype="<i8").astype(np.int64)
        return np.frombuffer(b"".join(itemgetter(*ids)(self.codes)), dtype="<i8").astype(np.int64)

    def start_batch(self, new: int) -> None:
        """Before a batch brings up to `new` unknown ids: a new generation if they would pass the limit (never
        within a batch, so one batch's codes share one book)."""
        if len(self.codes) + new > self.limit:
            self.codes = {}
            self._generation += 1

    def code(self, device_id: str) -> int:
        codes = self.codes
        out = codes.get(device_id)
        if out is None:
            out = codes[device_id] = len(codes).to_bytes(8, "little")
        return int.from_bytes(out, "little")


_THREAD = threading.local()


def device_codes() -> DeviceCodes:
    """This thread's codebook (Bytewax worker threads decode concurrently: one book each)."""
    book = getattr(_THREAD, "codes", None)
    if book is None:
        book = _THREAD.codes = DeviceCodes()
    return book


class CodeSlots:
    """A keyed step's map from code to slot (or any per-device integer), per book; learned from the batches
    it had to look up by name. `forget` whenever a slot changes hands."""

    def __init__(self) -> None:
        self._maps: dict[Book, np.ndarray] = {}

    def get(self, codes: Any, book: Book | None) -> np.ndarray | None:
        """The slots of these codes, or None when one is not known (then look the batch up by name)."""
        if book is None:
            return None
        table = self._maps.get(book)
        if table is None:
            return None
        out = table.take(codes, mode="clip")  # a code past the table reads its last entry, always -1
        return None if out.min() < 0 else out

    def learn(self, codes: Any, book: Book | None, slots: np.ndarray) -> None:
        if book is None or not len(codes):
            return
        table = self._maps.get(book)
        need = int(codes.max()) + 2  # one more for the -1 at the end
        if table is None or len(table) < need:
            if table is None and len(self._maps) >= _MAX_BOOKS:
                self._maps.clear()
            wider = np.full(max(need, 2 * len(table) if table is not None else 64), -1, dtype=np.int64)
            if table is not None:
                wider[: len(table)] = table
            table = self._maps[book] = wider
        table[codes] = slots

    def slots(self, batch: Readings, table: dict[str, int], add: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """The batch's slots: by device code when this book's codes are known, else `table[device_id]` (and
        `add(ids)` when an id is missing: it adds those and returns every id's slot), learning the codes."""
        out = self.get(batch.codes, batch.book)
        if out is not None:
            return out
        ids = batch.device_id.tolist()
        try:
            out = lookup(table, ids)
        except KeyError:
            out = add(ids)
        self.learn(batch.codes, batch.book, out)
        return out

    def forget(self) -> None:
        self._maps.clear()
