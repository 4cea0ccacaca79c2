"""Device codes: the decoder numbers every device id it has vouched for, so that the keyed steps after it
(windows, detectors) find a batch's device slots with one numpy gather instead of one dict lookup per
reading (~35 ns a reading, twice per reading in the IoT flow).

- `CodeTable`: one process-wide numbering (id -> code, code -> id), with a random token. Bounded: when full
  the decoder starts a new table with a new token, and every code of the old one stops matching.
- `Readings.codes` / `Readings.code_token` carry a batch's codes, or None.
- `SlotCache`: a keyed state's code -> slot map. It answers only for codes of the table it learned from and
  for devices it has seen; otherwise the state looks devices up by id, as it would without codes, and
  teaches the cache. Codes that travel to another process (Bytewax pickles items between processes) carry
  a token that process never issued, so they are ignored there, never misread.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

_NO_SLOT = -1


class CodeTable:
    """id -> code (dense from 0) and code -> id. Written under `lock`; read without it (a reader takes the
    table once and uses only it: a code it finds always has its name). Ids of up to `_MAX_WORDS` x 8 UTF-8
    bytes are also indexed by their bytes (`find_bytes`), so a batch whose ids sit at fixed offsets of a
    buffer finds its codes without making or hashing one Python string."""

    def __init__(self) -> None:
        self.token = secrets.randbits(62) | 1  # never 0, which means "no codes"
        self.codes: dict[str, int] = {}
        self.names = np.empty(1024, dtype=object)
        self.lock = threading.Lock()
        self._by_bytes: dict[int, _ByteIndex] = {}  # by UTF-8 length

    def find_bytes(self, ids: np.ndarray) -> np.ndarray | None:
        """The codes of ids given as their UTF-8 bytes, one id of the same length per row of a uint8 (n, L)
        array; None when one of them has no code (then ask `lookup` by string)."""
        index = self._by_bytes.get(ids.shape[1])
        return None if index is None else index.find(ids)

    def lookup(self, ids: Sequence[str]) -> np.ndarray:
        """The codes of `ids` (KeyError for an id without one): one C-level pass."""
        if len(ids) == 1:
            return np.array([self.codes[ids[0]]], dtype=np.int64)
        return np.fromiter(itemgetter(*ids)(self.codes), dtype=np.int64, count=len(ids))

    def add(self, ids: Sequence[str]) -> None:
        """Number the ids that have no code yet (the caller vouched for them)."""
        with self.lock:
            codes = self.codes
            new = [d for d in dict.fromkeys(ids) if d not in codes]
            if not new:
                return
            end = len(codes) + len(new)
            if end > len(self.names):
                names = np.empty(max(end, len(self.names) * 2), dtype=object)
                names[: len(codes)] = self.names[: len(codes)]
                self.names = names
            start = len(codes)
            self.names[start:end] = new  # names first: a reader that finds a code finds its name
            for code, d in enumerate(new, start):
                raw = d.encode()
                if len(raw) <= _MAX_WORDS * 8:
                    index = self._by_bytes.get(len(raw))
                    if index is None:
                        index = self._by_bytes[len(raw)] = _ByteIndex(len(raw))
                    index.insert(raw, code)
            codes.update(zip(new, range(start, end), strict=True))


_MAX_WORDS = 4  # ids up to 32 bytes (a UUID's 36 characters take the dict)
_MAX_PROBES = 32
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the top bits


class _ByteIndex:
    """Open addressing (linear probing, load <= 1/4) over ids of one UTF-8 length, each held as `words`
    zero-padded little-endian uint64 words (word-major, so every step is a 1-D gather). Lookups compare
    whole keys, so two ids never share a code whatever their hashes. Inserted one at a time (new devices
    are rare), looked up a batch at a time."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.words = (length + 7) // 8
        self._alloc(1024)

    def _alloc(self, cap: int) -> None:
        self.bits = cap.bit_length() - 1
        self.keys = np.zeros((self.words, cap), dtype=np.uint64)
        self.code = np.full(cap, -1, dtype=np.int64)
        self.size = 0

    def _key(self, ids: np.ndarray) -> np.ndarray:
        """(n, length) bytes -> (words, n) uint64."""
        padded = np.zeros((len(ids), self.words * 8), dtype=np.uint8)
        padded[:, : self.length] = ids
        return np.ascontiguousarray(padded.view("<u8").T)

    def _home(self, keys: np.ndarray) -> np.ndarray:
        h = keys[0] * _MIX
        for w in range(1, self.words):
            h = (h ^ keys[w]) * _MIX
        return (h >> np.uint64(64 - self.bits)).astype(np.int64)

    def insert(self, raw: bytes, code: int) -> None:
        if 4 * (self.size + 1) > len(self.code):
            live = np.flatnonzero(self.code >= 0)
            keys, codes = self.keys[:, live], self.code[live]
            self._alloc(len(self.code) * 2)
            for i, c in enumerate(codes.tolist()):
                self._put(keys[:, i : i + 1], c)
        self._put(self._key(np.frombuffer(raw, dtype=np.uint8)[None]), code)

    def _put(self, key: np.ndarray, code: int) -> None:
        """`key`: (words, 1)."""
        mask = len(self.code) - 1
        at = int(self._home(key)[0])
        while self.code[at] >= 0:
            if (self.keys[:, at] == key[:, 0]).all():
                return
            at = (at + 1) & mask
        self.keys[:, at] = key[:, 0]
        self.code[at] = code
        self.size += 1

    def find(self, ids: np.ndarray) -> np.ndarray | None:
        keys = self._key(ids)
        at = self._home(keys)
        mask = len(self.code) - 1
        out = np.empty(len(ids), dtype=np.int64)
        todo: np.ndarray | None = None  # None: every row
        for _ in range(_MAX_PROBES):
            got = self.code[at]
            if got.min() < 0:
                return None  # an empty slot before the key: not indexed
            hit = self.keys[0][at] == (keys[0] if todo is None else keys[0][todo])
            for w in range(1, self.words):
                hit &= self.keys[w][at] == (keys[w] if todo is None else keys[w][todo])
            if todo is None:
                if hit.all():
                    return got
                out[hit] = got[hit]
                todo = np.flatnonzero(~hit)
                at = (at[todo] + 1) & mask
                continue
            out[todo[hit]] = got[hit]
            if hit.all():
                return out
            miss = ~hit
            todo = todo[miss]
            at = (at[miss] + 1) & mask
        return None


class SlotCache:
    """code -> slot for one keyed state (see the module docstring)."""

    def __init__(self) -> None:
        self.token = 0
        self.slot_of = np.empty(0, dtype=np.int64)  # by code; -1: unknown
        self.code_of = np.empty(0, dtype=np.int64)  # by slot; -1: none

    def slots(self, codes: np.ndarray | None, token: int) -> np.ndarray | None:
        """The slots of a batch's devices, or None when the cache cannot answer for all of them."""
        if codes is None or token != self.token or not len(codes):
            return None
        if int(codes.max()) >= len(self.slot_of) or int(codes.min()) < 0:
            return None
        out = self.slot_of[codes]
        return None if int(out.min()) < 0 else out

    def learn(self, codes: np.ndarray | None, token: int, slots: np.ndarray) -> None:
        """Remember the slots the state found by id for a batch's codes."""
        if codes is None or not token or not len(codes) or int(codes.min()) < 0:
            return
        if token != self.token:
            self.token = token
            self.slot_of = np.empty(0, dtype=np.int64)
            self.code_of = np.empty(0, dtype=np.int64)
        self.slot_of = _grown(self.slot_of, int(codes.max()) + 1)
        self.code_of = _grown(self.code_of, int(slots.max()) + 1)
        self.slot_of[codes] = slots
        self.code_of[slots] = codes

    def forget(self, slots: Sequence[int] | np.ndarray) -> None:
        """Slots given up (a device expired): their codes no longer lead there."""
        s = np.asarray(slots, dtype=np.int64)
        s = s[s < len(self.code_of)]
        codes = self.code_of[s]
        self.slot_of[codes[codes >= 0]] = _NO_SLOT
        self.code_of[s] = _NO_SLOT


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    if size <= len(a):
        return a
    out = np.full(max(size, len(a) + len(a) // 4, 64), _NO_SLOT, dtype=np.int64)
    out[: len(a)] = a
    return out
