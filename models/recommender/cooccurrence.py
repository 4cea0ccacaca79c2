"""Fit the batch recommender: item–item co-occurrence over users, normalised, top-K neighbours per item.

    X        users × items, 1 where the user interacted with the item
    C = XᵀX  how many users share each pair of items (diagonal cleared)
    sim_ij = C_ij / (n_i^α · n_j^(1-α))      n_i = users of item i; α = 0.5 is the cosine
    keep the K largest per item (the arrays the server scores with)

Popularity (the fallback) counts interactions with an optional exponential time decay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from engine.serve.recarrays import RecArrays
from engine.serve.recommend import ScoringParams
from models.recommender.data import InteractionLog


@dataclass(frozen=True, slots=True)
class FitConfig:
    neighbors: int = 50  # K kept per item
    alpha: float = 0.5  # 0.5 = cosine; larger favours popular neighbours less
    popularity_half_life_days: float = 0.0  # 0 = plain counts
    history_per_user: int = 1000  # batch history kept per user (for scoring and for excluding seen items)
    scoring: ScoringParams = field(default_factory=ScoringParams)

    def __post_init__(self) -> None:
        if self.neighbors < 1:
            msg = f"neighbors must be at least 1, got {self.neighbors}"
            raise ValueError(msg)
        if not 0.0 <= self.alpha <= 1.0:
            msg = f"alpha must lie in [0, 1], got {self.alpha}"
            raise ValueError(msg)

    def params(self) -> dict[str, float | int]:
        return {
            "algorithm_neighbors": self.neighbors,
            "alpha": self.alpha,
            "popularity_half_life_days": self.popularity_half_life_days,
            "history_per_user": self.history_per_user,
            **self.scoring.as_params(),
        }


def fit(log: InteractionLog, cfg: FitConfig | None = None) -> RecArrays:
    """The recommender arrays for `log` (which must hold at least one interaction)."""
    cfg = cfg or FitConfig()
    if not len(log):
        msg = f"{log.source}: no interactions to train on"
        raise ValueError(msg)
    items, item_codes = np.unique(log.items, return_inverse=True)
    users, user_codes = np.unique(log.users, return_inverse=True)
    n_items = len(items)
    X = sp.csr_matrix((np.ones(len(log), dtype=np.float32), (user_codes, item_codes)), shape=(len(users), n_items))
    X.data[:] = 1.0  # duplicates were summed: binary again
    counts = np.asarray(X.sum(axis=0)).ravel()
    C = (X.T @ X).tocsr()
    C.setdiag(0)
    C.eliminate_zeros()
    neighbors, similarity = _top_k(C, counts, cfg.neighbors, cfg.alpha)
    hist_ptr, hist_items = _histories(user_codes, item_codes, len(users), n_items, cfg.history_per_user)
    return RecArrays(
        items=items.astype(str),
        neighbors=neighbors,
        similarity=similarity,
        popularity=_popularity(item_codes, log.ts, n_items, cfg.popularity_half_life_days),
        users=users.astype(str),
        hist_ptr=hist_ptr,
        hist_items=hist_items,
    )


def _top_k(C: sp.csr_matrix, counts: np.ndarray, k: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    n = C.shape[0]
    k = max(1, min(k, n))
    rows = np.repeat(np.arange(n), np.diff(C.indptr))
    sim = C.data / (np.power(counts[rows], alpha) * np.power(counts[C.indices], 1.0 - alpha))
    neighbors = np.repeat(np.arange(n, dtype=np.int32)[:, None], k, axis=1)  # padding: the item itself, sim 0
    similarity = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        lo, hi = C.indptr[i], C.indptr[i + 1]
        if lo == hi:
            continue
        s, idx = sim[lo:hi], C.indices[lo:hi]
        if hi - lo > k:
            part = np.argpartition(-s, k - 1)[:k]
            s, idx = s[part], idx[part]
        order = np.argsort(-s, kind="stable")
        neighbors[i, : len(order)] = idx[order]
        similarity[i, : len(order)] = s[order]
    return neighbors, similarity


def _histories(
    user_codes: np.ndarray, item_codes: np.ndarray, n_users: int, n_items: int, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's distinct items ordered by their last interaction (the log is time-sorted), newest `cap`."""
    key = user_codes.astype(np.int64) * n_items + item_codes
    pairs, first_from_end = np.unique(key[::-1], return_index=True)
    last_pos = len(key) - 1 - first_from_end
    users, items = pairs // n_items, pairs % n_items
    order = np.lexsort((last_pos, users))  # by user, then by time
    users, items = users[order], items[order]
    if cap > 0 and len(users):
        # position of each entry counted from the user's newest one; keep the newest `cap`
        ends = np.searchsorted(users, users, side="right")
        keep = ends - np.arange(len(users)) <= cap
        users, items = users[keep], items[keep]
    ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(ptr, users + 1, 1)
    return np.cumsum(ptr), items.astype(np.int32)


def _popularity(item_codes: np.ndarray, ts: np.ndarray, n_items: int, half_life_days: float) -> np.ndarray:
    if half_life_days > 0 and len(ts):
        age_days = (ts[-1] - ts).astype(np.float64) / 86400.0
        weights = 0.5 ** (age_days / half_life_days)
    else:
        weights = np.ones(len(item_codes))
    return np.bincount(item_codes, weights=weights, minlength=n_items).astype(np.float32)
