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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from engine.connectors.slots import lookup

if TYPE_CHECKING:
    from engine.connectors.messages import Readings

Book = tuple[int, int]  # (codebook id, generation)
_MAX_BOOKS = 8  # books a step remembers (one per decoding thread or process that feeds it)


class _ByteTable(NamedTuple):
    """The known ids of one byte length, for `DeviceCodes.by_bytes`."""

    keys: np.ndarray  # sorted uint64 (`_keys`)
    codes: np.ndarray  # int64, in `keys` order
    rows: np.ndarray | None  # the ids' bytes in `keys` order, when keys are hashes (ids over 8 bytes)
    size: int  # ids the book knew when this was built


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _keys(rows: np.ndarray) -> np.ndarray:
    """One uint64 per id of `rows` ((n, L) bytes): the bytes themselves up to 8 (exact), a hash beyond."""
    n, width = rows.shape
    words = -(-width // 8)
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, :width] = rows
    w = padded.view("<u8")
    key = w[:, 0].copy()
    for j in range(1, words):
        key *= _MIX  # wraps modulo 2**64
        key ^= w[:, j]
    return key


class DeviceCodes:
    """Device id -> code (0, 1, 2, ... in order of first sight) for one decoding thread. Bounded: with more
    than `limit` ids known it starts a new generation (a new book), so the steps' tables stay small.

    Ids are looked up by name (`known`: a dict lookup each, hashing the fresh strings the decoder made) or,
    when the decoder has them as fixed-width bytes, all at once (`by_bytes`: a sorted table per byte length,
    searched with numpy; rebuilt once the book has grown by an eighth of what the table holds, or after 8
    misses, so a fleet that keeps growing does not rebuild it every batch)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._id = int.from_bytes(os.urandom(8), "little")
        self._generation = 0
        self.codes: dict[str, int] = {}
        self._names = np.empty(64, dtype=object)  # code -> id (the string first seen)
        self._tables: dict[int, _ByteTable] = {}
        self._misses = 0  # `by_bytes` calls that missed since the last table was built

    @property
    def book(self) -> Book:
        return (self._id, self._generation)

    def known(self, ids: list[str]) -> np.ndarray:
        """The codes of ids already known (KeyError otherwise): one C-level pass."""
        return lookup(self.codes, ids)

    def by_bytes(self, rows: np.ndarray) -> np.ndarray | None:
        """The codes of ids given as bytes, one per row ((n, L) uint8), when every one is known; else None
        (then look them up by name)."""
        width = rows.shape[1]
        if not width:
            return None
        table = self._tables.get(width)
        if table is None or (table.size != len(self.codes) and self._due(table)):
            table = self._tables[width] = self._build(width)
        if not len(table.keys):
            self._misses += 1
            return None
        key = _keys(rows)
        pos = np.searchsorted(table.keys, key)
        np.minimum(pos, len(table.keys) - 1, out=pos)
        if not (table.keys[pos] == key).all() or (table.rows is not None and not (table.rows[pos] == rows).all()):
            self._misses += 1
            return None
        return table.codes[pos]

    def _due(self, table: _ByteTable) -> bool:
        return self._misses >= 8 or (len(self.codes) - table.size) * 8 >= len(table.keys)

    def _build(self, width: int) -> _ByteTable:
        self._misses = 0
        # ASCII ids only (their bytes are their characters): one of another byte length is never in a table,
        # so it takes the name path. No per-id temporaries: at 10 000 devices they showed in the peak RSS.
        names = [d for d in self.codes if len(d) == width and d.isascii()]
        rows = np.frombuffer("".join(names).encode("ascii"), dtype=np.uint8).reshape(len(names), width)
        key = _keys(rows)
        order = np.argsort(key, kind="stable")
        codes = np.fromiter(map(self.codes.__getitem__, names), dtype=np.int64, count=len(names))[order]
        return _ByteTable(key[order], codes, rows[order] if width > 8 else None, len(self.codes))

    def names(self, codes: np.ndarray) -> np.ndarray:
        """The ids of these codes (an object array of the strings first seen)."""
        return self._names.take(codes)

    def start_batch(self, new: int) -> None:
        """Before a batch brings up to `new` unknown ids: a new generation if they would pass the limit (never
        within a batch, so one batch's codes share one book)."""
        if len(self.codes) + new > self.limit:
            self.codes = {}
            self._tables.clear()
            self._names = np.empty(64, dtype=object)
            self._generation += 1

    def code(self, device_id: str) -> int:
        codes = self.codes
        out = codes.get(device_id)
        if out is None:
            out = codes[device_id] = len(codes)
            if out >= len(self._names):
                wider = np.empty(2 * len(self._names), dtype=object)
                wider[:out] = self._names
                self._names = wider
            self._names[out] = device_id
        return out


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
            wider = np.full(max(need, len(table) * 5 // 4 if table is not None else 64), -1, dtype=np.int64)
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
