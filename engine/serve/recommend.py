"""Recommendations: the batch part (item–item co-occurrence arrays from the registry) plus the real-time
part (each user's latest items), scored over the whole catalogue in one vectorised step.

For a user with history items h (batch history, oldest first, then the real-time items) and weights w:

    scores = Σ_j w_j · sim(h_j, ·)       one `np.bincount` over the K neighbours of every history item
           + ε · popularity               backfills and breaks ties
    seen items are never recommended
    top-k by score, ties by popularity rank (deterministic)

Only the neighbours of the history (the candidates, at most |h|·K) can score above ε·popularity, so the
top k is taken over the candidates plus the k most popular other items (a pre-sorted order), not over the
whole catalogue: the same result as ranking every item (a property test checks it against that), at a
cost that does not grow with the catalogue (a full `argpartition` over 10 000 items was ~70 µs).

A user with no known history gets the most popular items (the fallback). The same `Scorer` serves
requests and is used by the offline evaluation (`models.recommender.evaluate`), so what is measured is
what is served. Numpy + msgspec only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from engine.serve.recarrays import RecArrays

STATE_FORMAT = "tidegate.recommender.state/1"
_EMPTY = np.empty(0, dtype=np.intp)
_EMPTY.flags.writeable = False


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """How history is weighted; stored in the model's manifest `params` so evaluation and serving agree."""

    history_cap: int = 200  # the most recent batch-history items that score (all of them still count as seen)
    recency_half_life: float = 10.0  # in history positions, newest first; 0 = no decay
    realtime_weight: float = 1.0  # extra factor for an item seen since the model was trained
    popularity_weight: float = 1e-3  # ε in the docstring

    @classmethod
    def from_params(cls, params: dict[str, object]) -> ScoringParams:
        kw = {}
        for name in cls.__slots__:
            value = params.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                kw[name] = type(getattr(cls(), name))(value)
        return cls(**kw)

    def as_params(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Recommendation:
    items: list[str]
    scores: list[float]
    source: str  # "model" | "popularity"


class Scorer:
    """One loaded version of the batch recommender: indexes built once, immutable afterwards."""

    def __init__(self, arrays: RecArrays, params: ScoringParams | None = None) -> None:
        self.arrays = arrays
        self.params = params or ScoringParams()
        self.item_ids: list[str] = arrays.items.tolist()
        self.index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {user: u for u, user in enumerate(arrays.users.tolist())}
        pop = arrays.popularity.astype(np.float64)
        top = float(pop.max()) if pop.size else 0.0
        self._pop = pop / top if top > 0 else pop
        self._pop_order = np.argsort(-self._pop, kind="stable")
        self._pop_rank = np.empty_like(self._pop_order)
        self._pop_rank[self._pop_order] = np.arange(self._pop_order.size)
        self._neighbors = arrays.neighbors.astype(np.intp)
        self._sim = arrays.similarity.astype(np.float64)
        self._pop_eps = self.params.popularity_weight * self._pop
        self._hist = arrays.hist_items.astype(np.intp)
        self._hist.flags.writeable = False  # batch_history hands out views
        self._ptr: list[int] = arrays.hist_ptr.tolist()
        self._decay_newest_last = self._decay_table(self.params.history_cap + 1024)[::-1].copy()  # grows if needed

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def _decay_table(self, n: int) -> np.ndarray:
        hl = self.params.recency_half_life
        return 0.5 ** (np.arange(n) / hl) if hl > 0 else np.ones(n)

    def batch_history(self, user_id: str) -> np.ndarray:
        u = self.user_index.get(user_id)
        return _EMPTY if u is None else self._hist[self._ptr[u] : self._ptr[u + 1]]

    def recommend(self, user_id: str, recent: Sequence[str] = (), k: int = 10) -> Recommendation:
        """The top `k` unseen items for `user_id`, whose latest items (not yet in the batch part) are `recent`."""
        batch = self.batch_history(user_id)
        fresh = (
            np.fromiter((i for i in map(self.index.get, recent) if i is not None), dtype=np.intp) if recent else _EMPTY
        )
        if batch.size == 0 and fresh.size == 0:
            return self.popular(k)
        p = self.params
        scored = batch[-p.history_cap :] if p.history_cap > 0 else batch
        hist = np.concatenate([scored, fresh]) if fresh.size else scored
        m = hist.size
        if m > self._decay_newest_last.size:
            self._decay_newest_last = self._decay_table(m)[::-1].copy()
        weights = self._decay_newest_last[self._decay_newest_last.size - m :]  # newest last: weight 1, older decay
        if fresh.size:
            weights = weights.copy()
            weights[scored.size :] *= p.realtime_weight
        near = self._neighbors[hist].ravel()
        scores = np.bincount(near, weights=(self._sim[hist] * weights[:, None]).ravel(), minlength=self.n_items)
        mark = np.zeros(self.n_items, dtype=np.int8)  # 1: a candidate (a neighbour), 2: seen
        mark[near] = 1
        mark[batch] = 2
        if fresh.size:
            mark[fresh] = 2
        cand = np.flatnonzero(mark == 1)
        n = min(k, self.n_items)
        cand_scores = scores[cand] + self._pop_eps[cand]
        if cand.size > n:  # keep every candidate tied with the n-th best, so ties resolve by rank below
            nth = np.partition(cand_scores, cand.size - n)[cand.size - n]
            keep = cand_scores >= nth
            cand, cand_scores = cand[keep], cand_scores[keep]
        others = self._pop_order[: n + int(np.count_nonzero(mark))]
        others = others[mark[others] == 0][:n]  # the most popular items that are neither seen nor candidates
        items = np.concatenate([cand, others])
        item_scores = np.concatenate([cand_scores, self._pop_eps[others]])
        top = np.lexsort((self._pop_rank[items], -item_scores))[:n]
        return Recommendation(
            [self.item_ids[i] for i in items[top].tolist()], item_scores[top].round(6).tolist(), "model"
        )

    def popular(self, k: int, exclude: Iterable[int] = ()) -> Recommendation:
        skip = set(exclude)
        top = [int(i) for i in self._pop_order[: k + len(skip)] if int(i) not in skip][:k]
        return Recommendation([self.item_ids[i] for i in top], self._pop[top].round(6).tolist(), "popularity")


class StateSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The real-time state on disk (written by the interactions flow, read by the server at start)."""

    format: str = STATE_FORMAT
    users: dict[str, list[str]] = msgspec.field(default_factory=dict)  # user -> latest items, oldest first
    positions: dict[str, int] = msgspec.field(default_factory=dict)  # spool segment -> bytes applied (the flow's)


class RealtimeState:
    """Each user's latest items since training. Bounded: `per_user` items per user, `max_users` users
    (least recently active evicted first). Item ids, not indices, so it survives a model swap."""

    def __init__(self, per_user: int = 50, max_users: int = 100_000) -> None:
        self.per_user = per_user
        self.max_users = max_users
        self._users: OrderedDict[str, deque[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._users)

    def add(self, user_id: str, item_id: str) -> None:
        """`item_id` becomes the user's latest item (an item seen again moves to the end, it is not doubled)."""
        items = self._users.get(user_id)
        if items is None:
            items = self._users[user_id] = deque(maxlen=self.per_user)
            if len(self._users) > self.max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
            if item_id in items:
                items.remove(item_id)
        items.append(item_id)

    def recent(self, user_id: str) -> tuple[str, ...]:
        items = self._users.get(user_id)
        return tuple(items) if items is not None else ()

    def snapshot(self, positions: dict[str, int] | None = None) -> StateSnapshot:
        return StateSnapshot(users={u: list(items) for u, items in self._users.items()}, positions=positions or {})

    def restore(self, snap: StateSnapshot) -> None:
        for user, items in snap.users.items():
            for item in items:
                self.add(user, item)

    def to_json(self, positions: dict[str, int] | None = None) -> bytes:
        return msgspec.json.encode(self.snapshot(positions))

    @staticmethod
    def decode(data: bytes) -> StateSnapshot:
        snap = msgspec.json.decode(data, type=StateSnapshot)
        if snap.format != STATE_FORMAT:
            msg = f"real-time state format {snap.format!r} is not {STATE_FORMAT!r}"
            raise ValueError(msg)
        return snap
