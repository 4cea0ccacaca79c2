"""Decode MQTT payloads into readings once, at the edge.

`decode_batch` (the flow's path): msgspec decodes every payload of a batch into a flat struct (no unknown
keys, canonical names, measurements typed and range-checked by msgspec) whose timestamp and device id are
plain strings. The structs become columns without a Python step per value (re-encoded to MessagePack, whose
fixed layout numpy reads; see `_packed_columns`); the timestamps are checked with numpy at once (the shapes
`YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` parsed and range-checked; a batch of one minute, the usual case, parses the
minute once), the device ids against the schema's character class and lengths and ids that read as missing
(an id vouched for gets a device code, `engine.connectors.codes`, and a batch of known ids is vouched for
with one lookup), and the batch comes out as columns (`Readings`, with the codes). That is ~7x cheaper per
message than decoding one datetime-typed struct at a time.

Anything the fast path cannot vouch for goes through the shared per-record validator
(`engine.validation.validate_record`), so the verdict and the reject reason are the same as for files and
HTTP; a parity test holds the two together. `decode_reading` is the same path for one payload.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import threading
import typing
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np

from engine.connectors.codes import DeviceCodes, device_codes
from engine.connectors.messages import MEASUREMENTS, DeadLetter, MessageBatch, Readings
from engine.schema import SENSOR_READING, SensorReading
from engine.validation import Problem, validate_record
from engine.validation.rules import BAD_JSON, MISSING_TOKENS, WHITESPACE, clean_column_name

_MAX_RAW = 4096


_ANY = msgspec.json.Decoder()
_TS = SENSOR_READING.spec("ts")
assert _TS.since is not None and _TS.before is not None
_SINCE, _BEFORE = _TS.since, _TS.before
_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_US = dt.timedelta(microseconds=1)


def decode_reading(payload: bytes) -> SensorReading | Problem:
    """One payload -> a reading, or the Problem the shared validator finds (the batch path's checks, for
    one message: the same verdicts, parity-tested)."""
    try:
        r = _FLAT.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return _full(payload)
    when = _TS_ONE(r.ts)
    values = [None if v != v else v for v in (r.temperature_c, r.humidity_pct, r.pressure_hpa, r.vibration_g)]
    if when is None or not _id_ok(r.device_id) or values == [None] * len(MEASUREMENTS):
        return _full(payload)
    if any(v is not None and not lo <= v <= hi for v, lo, hi in zip(values, _LOWS, _HIGHS, strict=True)):
        return _full(payload)
    y, mo, d, h, mi, s, frac = when.groups()
    try:
        ts = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0").ljust(6, "0")), _UTC)
    except ValueError:
        return _full(payload)
    if not _SINCE <= ts < _BEFORE:
        return _full(payload)
    return SensorReading(device_id=r.device_id, ts=ts, **dict(zip(MEASUREMENTS, values, strict=True)))


def _full(payload: bytes) -> SensorReading | Problem:
    return _verdict(payload)[1]


def _verdict(payload: bytes) -> tuple[Any, SensorReading | Problem]:
    """The shared validator's verdict on one payload, with the JSON value it judged (None: not JSON)."""
    try:
        obj = _ANY.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for bad UTF-8
        return None, Problem(BAD_JSON, f"not valid JSON: {exc}")
    out = validate_record(SENSOR_READING, obj)
    assert isinstance(out, SensorReading | Problem)
    return obj, out


def position(topic: str, payload: bytes) -> str:
    """A stable position for a message without offsets: its topic and a digest of its bytes, so a
    redelivered message is dead-lettered once (rejects are idempotent on run, source and position)."""
    return f"{topic}#{hashlib.blake2b(payload, digest_size=8).hexdigest()}"


# -- the batch path --------------------------------------------------------------------------------------
_NAN = float("nan")
# The measurements are plain floats, not None: an absent one is NaN (a JSON null takes the validator). Their
# ranges are checked column-wise with the id and the timestamp below (msgspec's own range check cost ~17 ns
# a message more than numpy's); a value out of range takes the validator, whose verdict it gets.
# gc=False: these structs hold only str and float, so the garbage collector need not track them.
_SPECS = [SENSOR_READING.spec(m) for m in MEASUREMENTS]
assert all(s.kind == "float" for s in _SPECS)
_LOW = np.array([[-np.inf if s.ge is None else s.ge] for s in _SPECS])  # (M, 1), inclusive
_HIGH = np.array([[np.inf if s.le is None else s.le] for s in _SPECS])
_LOWS, _HIGHS = _LOW[:, 0].tolist(), _HIGH[:, 0].tolist()
_FIELDS: list[Any] = [("device_id", str), ("ts", str), *((m, float, _NAN) for m in MEASUREMENTS)]
_Flat = msgspec.defstruct(
    "_Flat",
    _FIELDS,
    kw_only=True,
    forbid_unknown_fields=True,
    frozen=True,
    gc=False,
)
_FLAT = msgspec.json.Decoder(_Flat)


# Keys beyond the schema's: payloads often carry some ("seq", "fw", "rssi"). The flat decoder refuses every
# key it does not know, because one that cleans to a field or an alias (`Temp-C`, `temp`) must go to the
# validator; but a key that is already a clean name and names no field or alias is one the validator
# ignores, and a fleet sending one in every payload would put every payload through the validator (~16x
# the batch path's cost, measured). Such keys, seen in payloads the validator accepted, are learned (at most
# `_MAX_EXTRA` per process) and the batch decoder is rebuilt to skip their values (msgspec.Raw, unparsed).
# That decoder's batches take the field-by-field columns (`_listed_columns`): skipped values vary in size.
_MAX_EXTRA = 64
# Learned only when at least 1 in `_LEARN_SHARE` payloads of a batch carries them: a batch decoder that skips
# keys reads its columns field by field (~0.16 us a payload more than the packed path), while the validator
# costs ~5 us a payload; below ~3% of payloads, leaving them to the validator is cheaper.
_LEARN_SHARE = 20
_SCHEMA_NAMES = frozenset(f.name for f in SENSOR_READING.fields) | SENSOR_READING.alias_names
_FIELDS_SET = frozenset(f[0] for f in _FIELDS)
_RAW_NULL = msgspec.Raw(b"null")


class _Decoder(typing.NamedTuple):
    decode: typing.Callable[[bytes], Any]
    nothing: Any  # stands in for a payload the decoder refused
    extras: frozenset[str]  # the keys it skips


def _decoder(extras: frozenset[str]) -> _Decoder:
    if not extras:
        return _Decoder(_FLAT.decode, _Flat(device_id="", ts=""), extras)
    skipped = [(f"_x{i}", msgspec.Raw, msgspec.field(name=k, default=_RAW_NULL)) for i, k in enumerate(sorted(extras))]
    kind = msgspec.defstruct(
        "_FlatExtra",
        [*_FIELDS, *skipped],
        kw_only=True,
        forbid_unknown_fields=True,
        frozen=True,
        gc=False,
    )
    return _Decoder(msgspec.json.Decoder(kind).decode, kind(device_id="", ts=""), extras)


_BATCH = _decoder(frozenset())


def _harmless(key: object) -> bool:
    """A key the validator never reads: already a clean name, and no field's name or alias."""
    return type(key) is str and key not in _SCHEMA_NAMES and clean_column_name(key) == key


def _learn(extras: set[str]) -> None:
    global _BATCH
    known = _BATCH.extras
    room = _MAX_EXTRA - len(known)
    if room > 0:
        _BATCH = _decoder(known | frozenset(sorted(extras - known)[:room]))


_SINCE_US = (_SINCE - _EPOCH) // _ONE_US
_BEFORE_US = (_BEFORE - _EPOCH) // _ONE_US


# Timestamp shapes parsed column-wise: 'YYYY-MM-DDTHH:MM:SSZ' (20 chars) and with 1-6 fraction digits
# (22-27 chars). Every other spelling takes the validator.
def _shape(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per character position: the lowest allowed byte and the allowed span above it; and the weights
    that turn the characters into (year, month, day, hour, minute, second, microsecond of the day) with
    one matrix product (exact: every partial sum is an integer far below 2**53)."""
    text = "0000-00-00T00:00:00" + ("." + "0" * (width - 21) if width > 20 else "") + "Z"
    lo = np.frombuffer(text.encode(), dtype=np.uint8).copy()
    span = np.where(lo == ord("0"), 9, 0).astype(np.uint8)
    weights = np.zeros((7, width), dtype=np.float64)
    for row, (start, n) in enumerate(((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))):
        weights[row, start : start + n] = 10.0 ** np.arange(n - 1, -1, -1)
    weights[6] = weights[3] * 3_600e6 + weights[4] * 60e6 + weights[5] * 1e6
    if width > 20:
        weights[6, 20 : width - 1] = 10.0 ** np.arange(5, 5 - (width - 21), -1)
    offset = ord("0") * weights.sum(axis=1)
    return lo[:, None], span[:, None], weights, offset[:, None]


_TS_SHAPES = {w: _shape(w) for w in (20, 22, 23, 24, 25, 26, 27)}
_MINUTE = 17  # 'YYYY-MM-DDTHH:MM:'
# Seconds and fraction digits -> microseconds within the minute, as integer weights (and '0' times them).
_TS_TAILS = {w: _TS_SHAPES[w][2][6, _MINUTE:] for w in _TS_SHAPES}
_TS_TAIL_OFFSET = {w: ord("0") * int(t.sum()) for w, t in _TS_TAILS.items()}
_TS_ONE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z").fullmatch
# Per (year, month) from the schema's first year to its last: the month's first day (days since the
# epoch) and its length, leap years included.
_FIRST_YEAR = _SINCE.year
_MONTHS = np.arange((_BEFORE.year - _FIRST_YEAR + 1) * 12) + (_FIRST_YEAR - 1970) * 12
_MONTH_START = _MONTHS.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
_MONTH_DAYS = (_MONTHS + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - _MONTH_START
_DAY_US = 86_400_000_000
_BLOCK = 512  # columns per block of `_parse_shape` (27 x 512 floats stay under glibc's 128 KiB mmap threshold)


def _parse_minute(ch: np.ndarray, width: int, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_parse_shape` for strings of one minute (the usual batch: a few seconds of readings): the minute is
    parsed once, the seconds and fractions column-wise. `good`: the characters are in shape."""
    y, mo, d, h, mi = (int(bytes(ch[a:b, 0])) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16)))
    ym = (y - _FIRST_YEAR) * 12 + mo - 1
    if not (1 <= mo <= 12 and 0 <= ym < len(_MONTHS) and 1 <= d <= _MONTH_DAYS[ym] and h < 24 and mi < 60):
        return np.zeros(ch.shape[1], dtype=np.int64), np.zeros(ch.shape[1], dtype=bool)
    base = ((int(_MONTH_START[ym]) + d - 1) * 86_400 + h * 3_600 + mi * 60) * 1_000_000
    # microseconds within the minute (exact: integers far below 2**53)
    value = (_TS_TAILS[width] @ ch[_MINUTE:].astype(np.float64)).astype(np.int64)
    value += base - _TS_TAIL_OFFSET[width]
    good &= ch[_MINUTE] <= ord("5")  # seconds below 60
    if not (base >= _SINCE_US and base + 60_000_000 <= _BEFORE_US):
        good &= (value >= _SINCE_US) & (value < _BEFORE_US)
    return value, good


def _parse_shape(ch: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Characters of one shape, one string per column (width, k) -> (microseconds since the epoch,
    vouched for)."""
    lo, span, weights, offset = _TS_SHAPES[width]
    good = ~((ch - lo) > span).any(axis=0)  # uint8 arithmetic: below `lo` wraps above `span`
    if good[0] and (ch[:_MINUTE] == ch[:_MINUTE, :1]).all():
        return _parse_minute(ch, width, good)
    n = ch.shape[1]
    parts = np.empty((7, n))
    for a in range(0, n, _BLOCK):  # a block at a time: no large temporary to map and unmap per batch
        parts[:, a : a + _BLOCK] = weights @ ch[:, a : a + _BLOCK].astype(np.float64)
    year, month, day, hour, minute, second, day_us = (parts - offset).astype(np.int64)
    ym = (year - _FIRST_YEAR) * 12 + month - 1
    known = (month >= 1) & (month <= 12) & (ym >= 0) & (ym < len(_MONTHS))
    ym = np.where(known, ym, 0)
    good &= known & (day >= 1) & (day <= _MONTH_DAYS[ym]) & (hour < 24) & (minute < 60) & (second < 60)
    value = (_MONTH_START[ym] + day - 1) * _DAY_US + day_us
    good &= (value >= _SINCE_US) & (value < _BEFORE_US)
    return value, good


def _parse_timestamps(ts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """-> (microseconds since the epoch, whether this path vouches for the value) per string."""
    n = len(ts)
    # NUL-separated (a non-ASCII character becomes one '?', so offsets hold and that string fails).
    blob = np.frombuffer(("\0".join(ts) + "\0").encode("ascii", "replace"), dtype=np.uint8)
    clean = np.count_nonzero(blob == 0) == n  # then every NUL is a separator
    if clean and len(blob) % n == 0:
        width = len(blob) // n - 1
        grid = blob.reshape(n, width + 1)
        if width in _TS_SHAPES and not grid[:, width].any():  # the usual case: one shape, no gather
            return _parse_shape(np.ascontiguousarray(grid[:, :width].T), width)
    if clean:
        ends = np.flatnonzero(blob == 0)
        lens = np.diff(ends, prepend=-1) - 1
    else:
        lens = np.fromiter(map(len, ts), dtype=np.int64, count=n)
        ends = np.cumsum(lens + 1) - 1
    starts = ends - lens
    us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    for width in _TS_SHAPES:
        rows = np.flatnonzero(lens == width)
        if len(rows):
            us[rows], ok[rows] = _parse_shape(blob[np.arange(width)[:, None] + starts[rows]], width)
    return us, ok


# Device ids: the schema's pattern ^[class]+$ and lengths, and not a word that reads as missing, checked for
# the whole column at once (a byte table over the NUL-joined ids); per id only where that fails.
_ID = SENSOR_READING.spec("device_id")
_ID_MIN, _ID_MAX = _ID.min_length or 1, _ID.max_length or 1 << 30
_ID_ONE = re.compile(_ID.pattern).search if _ID.pattern else None
_ID_CLASS = re.fullmatch(r"\^(\[[^\]\\]+\])\+\$", _ID.pattern or "")
_ID_BYTES = np.zeros(256, dtype=bool)
if _ID_CLASS:
    _ID_BYTES[[b for b in range(1, 128) if re.fullmatch(_ID_CLASS.group(1), chr(b))]] = True
_MAX_TOKEN = max(len(t) for t in MISSING_TOKENS)


def _id_ok(device_id: str) -> bool:
    return (
        device_id == device_id.strip(WHITESPACE)
        and _ID_MIN <= len(device_id) <= _ID_MAX
        and (_ID_ONE is None or _ID_ONE(device_id) is not None)
        and device_id.lower() not in MISSING_TOKENS
    )


def _ids_ok(ids: Sequence[str]) -> np.ndarray | None:
    """None when every device id is one the validator accepts unchanged; else a mask of those that are."""
    if not _ID_CLASS:
        return np.fromiter(map(_id_ok, ids), dtype=bool, count=len(ids))
    blob = np.frombuffer(("\0".join(ids) + "\0").encode("ascii", "replace"), dtype=np.uint8)
    ends = np.flatnonzero(blob == 0)
    if len(ends) != len(ids) or _ID_BYTES[blob].sum() != len(blob) - len(ends):
        return np.fromiter(map(_id_ok, ids), dtype=bool, count=len(ids))  # a character outside the class
    lens = np.diff(ends, prepend=-1) - 1
    ok = (lens >= _ID_MIN) & (lens <= _ID_MAX)
    for i in np.flatnonzero(lens <= _MAX_TOKEN).tolist():
        if ids[i].lower() in MISSING_TOKENS:
            ok[i] = False
    return None if ok.all() else ok


def _codes(book: DeviceCodes, ids: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (each id's device code, -1 for one the validator would not accept unchanged; None when every id
    is acceptable, else the mask of those that are). Only acceptable ids get codes, so a batch of known
    devices is vouched for by looking its ids up."""
    try:
        return book.known(ids), None
    except KeyError:
        pass
    ok = _ids_ok(ids)
    book.start_batch(len(set(ids).difference(book.codes)))
    if ok is None:
        codes = np.fromiter(map(book.code, ids), dtype=np.int64, count=len(ids))
    else:
        codes = np.array([book.code(d) if good else -1 for d, good in zip(ids, ok.tolist(), strict=True)])
    return codes, ok


# Columns without a Python step per value: msgspec encodes the decoded structs back to MessagePack, where a
# struct is a map of fixed keys, a float is 0xcb + 8 bytes and a string its length header + bytes. When the
# batch's ids share a length and so do its timestamps, every record has the same byte layout, and numpy reads
# the columns straight out of the buffer. The length headers are checked for every record (each one fixes
# where the next begins), so a batch that is not uniform takes the per-field lists instead.
_PACK = msgspec.msgpack.Encoder()
_BUFFERS = threading.local()
_PAYLOAD = itemgetter(1)


class _Layout(typing.NamedTuple):
    size: int  # bytes per record
    heads: tuple[tuple[int, int], ...]  # (offset, byte) of every string length header
    id_at: int
    ts_at: int
    floats: np.dtype  # the measurements, big-endian, at their offsets in a record


@functools.lru_cache(maxsize=64)
def _layout(id_len: int, ts_len: int) -> _Layout:
    proto = _Flat(device_id="a" * id_len, ts="0" * ts_len, **dict.fromkeys(MEASUREMENTS, 0.0))
    at = 1  # the map header
    heads: list[int] = []
    strings: dict[str, int] = {}
    floats: dict[str, int] = {}
    for name in _Flat.__struct_fields__:
        at += len(_PACK.encode(name))
        value = getattr(proto, name)
        size = len(_PACK.encode(value))
        if isinstance(value, str):
            heads += range(at, at + size - len(value))
            strings[name] = at + size - len(value)
        else:
            floats[name] = at + 1  # after 0xcb
        at += size
    packed = np.frombuffer(_PACK.encode(proto), dtype=np.uint8)
    assert len(packed) == at, "msgspec's MessagePack layout changed"
    dtype = np.dtype(
        {"names": list(floats), "formats": [">f8"] * len(floats), "offsets": list(floats.values()), "itemsize": at}
    )
    pairs = tuple(zip(heads, packed[heads].tolist(), strict=True))
    return _Layout(at, pairs, strings["device_id"], strings["ts"], dtype)


def _packed(flat: list[_Flat]) -> bytearray:
    """`flat` as MessagePack, in this thread's reused buffer (a batch's worth, ~140 bytes a reading, is more
    than glibc keeps around: a fresh one each time would be mapped and unmapped per batch)."""
    buf = getattr(_BUFFERS, "pack", None)
    if buf is None:
        buf = _BUFFERS.pack = bytearray()
    try:
        _PACK.encode_into(flat, buf)
    except BufferError:  # a view of the last batch's buffer is still alive (an exception held it): a new one
        buf = _BUFFERS.pack = bytearray()
        _PACK.encode_into(flat, buf)
    return buf


def _packed_columns(flat: list[_Flat]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """-> (microseconds since the epoch, vouched for, values (M, n), the device ids' bytes (n, L): a view of
    this thread's buffer, good until the next batch), or None when the layout varies."""
    n = len(flat)
    first = flat[0]
    lay = _layout(len(first.device_id), len(first.ts))
    raw = _packed(flat)
    head = len(raw) - n * lay.size
    if head != (1 if n < 16 else 3 if n < 65_536 else 5):
        return None
    grid = np.frombuffer(raw, dtype=np.uint8, count=n * lay.size, offset=head).reshape(n, lay.size)
    for at, byte in lay.heads:  # a column each: ~2x faster than one take of all of them
        if not (grid[:, at] == byte).all():
            return None
    width = len(first.ts)
    if width in _TS_SHAPES:
        ts_us, ok = _parse_shape(np.ascontiguousarray(grid[:, lay.ts_at : lay.ts_at + width].T), width)
    else:
        ts_us, ok = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    rec = np.frombuffer(raw, dtype=lay.floats, count=n, offset=head)
    values = np.empty((len(MEASUREMENTS), n))
    for i, m in enumerate(MEASUREMENTS):
        values[i] = rec[m]
    return ts_us, ok, values, grid[:, lay.id_at : lay.id_at + len(first.device_id)]


def _listed_columns(flat: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_packed_columns` for any batch: one Python list per field."""
    n = len(flat)
    ts_us, ok = _parse_timestamps([r.ts for r in flat])
    values = np.empty((len(MEASUREMENTS), n))
    values[0] = np.fromiter([r.temperature_c for r in flat], dtype=np.float64, count=n)
    values[1] = np.fromiter([r.humidity_pct for r in flat], dtype=np.float64, count=n)
    values[2] = np.fromiter([r.pressure_hpa for r in flat], dtype=np.float64, count=n)
    values[3] = np.fromiter([r.vibration_g for r in flat], dtype=np.float64, count=n)
    return ts_us, ok, values


def decode_batch(batch: MessageBatch) -> tuple[Readings, list[DeadLetter]]:
    """A message batch -> (readings as columns, in message order; dead letters);
    `len(readings) + len(dead) == len(batch.messages)`."""
    messages = batch.messages
    n = len(messages)
    if not n:
        return Readings.empty(batch.received_at), []
    dec = _BATCH
    flat: list[Any] = []
    refused: list[int] = []
    decoded = map(dec.decode, map(_PAYLOAD, messages))
    while True:  # one C-level pass; a refused payload is noted and the pass goes on
        try:
            flat.extend(decoded)
            break
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            refused.append(len(flat))
            flat.append(dec.nothing)
    id_rows = None
    if len(refused) == n:
        ok = np.zeros(n, dtype=bool)
        ts_us = np.zeros(n, dtype=np.int64)
        values = np.full((len(MEASUREMENTS), n), np.nan)
    else:
        if refused:  # a stand-in with the batch's usual shape keeps the columns uniform; the row fails below
            stand_in = flat[next((i for i, r in enumerate(refused) if r != i), len(refused))]
            for i in refused:
                flat[i] = stand_in
        packed = None if dec.extras else _packed_columns(flat)  # skipped values vary the layout
        if packed is None:
            ts_us, ok, values = _listed_columns(flat)
        else:
            ts_us, ok, values, id_rows = packed
        if refused:
            ok[refused] = False
        ok &= ~np.isnan(values).all(axis=0)
        ok &= ~((values < _LOW) | (values > _HIGH)).any(axis=0)  # NaN (absent) compares False: in range
    book = device_codes()
    codes = None if id_rows is None else book.by_bytes(id_rows)
    if codes is not None:  # every id known, so vouched for: the ids' strings are the ones first seen
        column = book.names(codes)
    else:
        ids = [r.device_id for r in flat]
        if len(refused) < n:
            codes, ids_ok = _codes(book, ids)
            if ids_ok is not None:
                ok &= ids_ok
        else:
            codes = np.full(n, -1, dtype=np.int64)
        column = np.empty(n, dtype=object)
        column[:] = ids
    dead: list[DeadLetter] = []
    extras: set[str] = set()
    carried = 0  # accepted payloads that carried keys to learn
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            topic, payload = messages[i]
            obj, out = _verdict(payload)
            if isinstance(out, Problem):
                raw = payload[:_MAX_RAW].decode("utf-8", errors="replace")
                dead.append(
                    DeadLetter(batch.source, position(topic, payload), raw, out.reason, out.message, batch.received_at)
                )
                continue
            if not _FIELDS_SET.issuperset(obj):  # keys beyond the flat fields
                new = [k for k in obj if k not in _FIELDS_SET and k not in dec.extras and _harmless(k)]
                if new:
                    extras.update(new)
                    carried += 1
            column[i] = out.device_id
            codes[i] = book.code(out.device_id)
            ts_us[i] = (out.ts - _EPOCH) // _ONE_US
            values[:, i] = [np.nan if v is None else v for v in (getattr(out, m) for m in MEASUREMENTS)]
            ok[i] = True
    if dead:  # a mask for the ids (cheaper than indices on objects), indices for the numbers
        keep = np.flatnonzero(ok)
        column, ts_us, values, codes = column[ok], ts_us[keep], np.take(values, keep, axis=1), codes[keep]
    if extras and carried * _LEARN_SHARE >= n:
        _learn(extras)
    return Readings(column, ts_us, values.T, batch.received_at, codes, book.book), dead
