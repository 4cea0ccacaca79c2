"""The batch recommender's artifact: plain arrays in one `.npz` (no pickle), the contract between
`models.recommender` (writes) and the server (reads).

Arrays (N items, K neighbours, U users, H stored history entries):

    format       ()       str     FORMAT, checked on load
    items        (N,)     str     item ids; an item's index is its position
    neighbors    (N, K)   int32   the K most similar items of each item (padded with the item itself)
    similarity   (N, K)   float32 their similarities (0 for padding)
    popularity   (N,)     float32 popularity score (time-decayed counts), the fallback for unknown users
    users        (U,)     str     users seen in training
    hist_ptr     (U+1,)   int64   user u's history is hist_items[hist_ptr[u]:hist_ptr[u+1]], oldest first
    hist_items   (H,)     int32   item indices

Numpy only: the server and training both import it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import TidegateError

FORMAT = "tidegate.recommender.cooccurrence/1"
ARTIFACT = "model.npz"


class RecArraysError(TidegateError):
    """The recommender artifact is not in the expected format; retrain it with `tidegate train-recommender`."""


@dataclass(frozen=True, slots=True, eq=False)
class RecArrays:
    """The batch part of the recommender, as arrays (see the module docstring)."""

    items: np.ndarray
    neighbors: np.ndarray
    similarity: np.ndarray
    popularity: np.ndarray
    users: np.ndarray
    hist_ptr: np.ndarray
    hist_items: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.items)
        problems = []
        if self.neighbors.ndim != 2 or self.neighbors.shape[0] != n:
            problems.append(f"neighbors has shape {self.neighbors.shape}, expected ({n}, K)")
        elif self.similarity.shape != self.neighbors.shape:
            problems.append(f"similarity has shape {self.similarity.shape}, expected {self.neighbors.shape}")
        if self.popularity.shape != (n,):
            problems.append(f"popularity has shape {self.popularity.shape}, expected ({n},)")
        if self.hist_ptr.shape != (len(self.users) + 1,):
            problems.append(f"hist_ptr has shape {self.hist_ptr.shape}, expected ({len(self.users) + 1},)")
        elif len(self.hist_ptr) and int(self.hist_ptr[-1]) != len(self.hist_items):
            problems.append("hist_ptr does not end at len(hist_items)")
        if n and self.neighbors.size and (self.neighbors.min() < 0 or self.neighbors.max() >= n):
            problems.append("neighbors holds an index outside the catalogue")
        if n and len(self.hist_items) and (self.hist_items.min() < 0 or self.hist_items.max() >= n):
            problems.append("hist_items holds an index outside the catalogue")
        if problems:
            msg = "bad recommender arrays: " + "; ".join(problems)
            raise RecArraysError(msg)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            format=np.array(FORMAT),
            items=self.items.astype(str),
            neighbors=self.neighbors.astype(np.int32),
            similarity=self.similarity.astype(np.float32),
            popularity=self.popularity.astype(np.float32),
            users=self.users.astype(str),
            hist_ptr=self.hist_ptr.astype(np.int64),
            hist_items=self.hist_items.astype(np.int32),
        )
        return buf.getvalue()

    @classmethod
    def load(cls, path: Path) -> RecArrays:
        """Read an artifact (pickle disabled); RecArraysError when it is not one of ours."""
        try:
            with np.load(path, allow_pickle=False) as z:
                fmt = str(z["format"]) if "format" in z.files else "?"
                if fmt != FORMAT:
                    msg = f"{path} has format {fmt!r}, this server reads {FORMAT!r}: retrain the recommender"
                    raise RecArraysError(msg)
                return cls(**{k: z[k] for k in cls.__slots__})
        except (OSError, ValueError, KeyError) as exc:
            msg = f"cannot read the recommender arrays {path}: {exc}"
            raise RecArraysError(msg) from exc
