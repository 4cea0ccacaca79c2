"""Batches as numpy columns (`Columns`): how the IoT flow hands rows to the store. DuckDB scans the arrays
in place, so a long-running flow loads neither polars nor pyarrow (together ~45 MB of RSS), and the store
writes them in slices of at most `SLICE_ROWS` rows, so its working memory stays bounded whatever the
batch size (a backlog replayed after an outage arrives as one large batch)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

Columns = Mapping[str, np.ndarray]
"""Columns of one length by name: object (str; None is NULL), float64 (NaN is NULL), int64, bool,
datetime64[us] (UTC)."""

SLICE_ROWS = 16_384

_MIX = np.uint64(0x9E3779B97F4A7C15)


def height(rows: Columns) -> int:
    return len(next(iter(rows.values()))) if rows else 0


def slices(rows: Columns, size: int = SLICE_ROWS) -> Iterator[Columns]:
    """`rows` in consecutive slices of at most `size` rows (views, no copies), in order."""
    n = height(rows)
    if n <= size:
        yield rows
        return
    for lo in range(0, n, size):
        yield {name: col[lo : lo + size] for name, col in rows.items()}


def distinct_keys(rows: Columns, key: Sequence[str]) -> bool:
    """True when no two rows share a key. Decided on 64-bit hashes of the key values: equal keys hash
    equal, so distinct hashes prove distinct keys; a collision, or a key column of another kind than
    strings, integers and datetimes, only answers False (then the caller takes its exact path)."""
    n = height(rows)
    mixed = np.zeros(n, dtype=np.uint64)
    for name in key:
        col = np.asarray(rows[name])
        if col.dtype.kind in "OUT":  # str (None is NULL): Python's hash, equal for equal strings
            part = np.fromiter(map(hash, col.tolist()), dtype=np.int64, count=n)
        elif col.dtype.kind in "iubMm":  # integers, datetimes: their int64 value
            part = col.astype(np.int64)
        else:  # floats: 0.0 == -0.0 and NaN = NaN in SQL, not in their bits
            return False
        mixed = mixed * _MIX ^ part.view(np.uint64)
    return bool(np.unique(mixed).size == n)


def instant(value: np.datetime64) -> dt.datetime:
    """A numpy datetime64 (UTC) as an aware datetime, to the microsecond (DuckDB's precision)."""
    return value.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
