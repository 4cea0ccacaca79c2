"""Offline evaluation on temporal splits, beside the most-popular baseline.

Protocols (`--split`; the numbers are only comparable within one protocol):
- `global`: one cut time below which `1 - test_share` of all interactions lie; fit on what came before.
  * batch: users with training history and at least one test item that is in the training catalogue and
    not in their history; each model recommends k items excluding the user's training items;
    recall@k = hits / |relevant|, NDCG@k binary (ideal = min(k, |relevant|) hits on top), user averages.
  * replay: the test period in time order, one event at a time, as the server sees it: before each
    interaction (u, i) with i in the catalogue and new to u, recommend k for u with u's earlier test items
    as the real-time part, then add i to it; HR@k (= recall@k with one relevant item) and NDCG@k per event.
    Users unknown at the cut are included (popularity until their first item).
- `user`: the last `test_share` of each user's interactions (users with ≥ 5) are the test items; fit on
  everything else (other users' later interactions included). Batch metrics as above.
Baseline "most-popular": the k most interacted-with training items the user has not seen.
The co-occurrence model is scored by `engine.serve.recommend.Scorer`, the code the server runs.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.serve.recommend import Scorer
from models.recommender.cooccurrence import FitConfig, fit
from models.recommender.data import InteractionLog

Split = Literal["global", "user"]
MODEL, POPULAR = "co-occurrence", "most-popular"
REALTIME_ITEMS = 50  # as the server keeps per user (ServeConfig.recent_items)


@dataclass(frozen=True, slots=True)
class ModelScore:
    protocol: str  # "batch" | "replay"
    name: str
    recall: float
    ndcg: float
    n: int  # users (batch) or events (replay) averaged over


@dataclass(frozen=True, slots=True)
class EvalReport:
    source: str
    split: str
    k: int
    cut: int | None  # epoch seconds (global split)
    train_interactions: int
    test_interactions: int
    catalogue: int
    users_cold: int  # test users without training history (not in the batch protocol)
    scores: list[ModelScore] = field(default_factory=list)
    fit_s: float = 0.0
    eval_s: float = 0.0

    def score(self, name: str, protocol: str = "batch") -> ModelScore:
        return next(s for s in self.scores if s.name == name and s.protocol == protocol)

    def table(self) -> str:
        where = (
            f"cut {dt.datetime.fromtimestamp(self.cut, dt.UTC).isoformat(timespec='seconds')}"
            if self.cut is not None
            else "last share of each user's interactions"
        )
        lines = [
            f"data {self.source}; {self.split} temporal split ({where}); train {self.train_interactions:,} "
            f"interactions, test {self.test_interactions:,}; catalogue {self.catalogue:,} items; "
            f"fit {self.fit_s:.2f}s, eval {self.eval_s:.2f}s",
            f"{'protocol':8s} {'model':15s} {'recall@' + str(self.k):>10s} {'ndcg@' + str(self.k):>9s} {'n':>7s}",
        ]
        lines += [f"{s.protocol:8s} {s.name:15s} {s.recall:10.4f} {s.ndcg:9.4f} {s.n:7,d}" for s in self.scores]
        if self.users_cold:
            lines.append(f"(test users unknown at training time, left out of 'batch': {self.users_cold:,})")
        return "\n".join(lines)


def temporal_split(log: InteractionLog, test_share: float = 0.2) -> tuple[InteractionLog, InteractionLog, int]:
    """(train, test, cut): the log is time-sorted, so the cut is the time at the (1 - test_share) quantile."""
    _check_share(test_share, len(log), log.source)
    cut = int(log.ts[int(len(log) * (1.0 - test_share))])
    before = log.ts < cut
    return log.subset(before), log.subset(~before), cut


def user_split(
    log: InteractionLog, test_share: float = 0.2, min_items: int = 5
) -> tuple[InteractionLog, InteractionLog]:
    """(train, test): each user's last `test_share` of interactions (users with ≥ `min_items`) are test."""
    _check_share(test_share, len(log), log.source)
    _, inv, counts = np.unique(log.users, return_inverse=True, return_counts=True)
    order = np.argsort(inv, kind="stable")  # by user, time order kept within a user
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(log), dtype=np.int64)
    rank[order] = np.arange(len(log)) - np.repeat(starts, counts)
    n = counts[inv]
    test = (n >= min_items) & (rank >= np.ceil(n * (1.0 - test_share)))
    return log.subset(~test), log.subset(test)


def _check_share(test_share: float, n: int, source: str) -> None:
    if not 0.0 < test_share < 1.0:
        msg = f"test_share must lie strictly between 0 and 1, got {test_share}"
        raise ValueError(msg)
    if n < 2:
        msg = f"{source}: {n} interactions are too few to split"
        raise ValueError(msg)


class _Popular:
    """Most-popular by training counts, excluding a set of seen item indices."""

    def __init__(self, scorer: Scorer, train: InteractionLog) -> None:
        items = scorer.arrays.items
        counts = np.bincount(np.searchsorted(items, train.items), minlength=len(items))
        self.order = np.argsort(-counts, kind="stable").tolist()
        self.ids = scorer.item_ids

    def top(self, k: int, seen: set[int]) -> list[str]:
        out: list[str] = []
        for i in self.order:
            if i not in seen:
                out.append(self.ids[i])
                if len(out) == k:
                    break
        return out


def evaluate(
    log: InteractionLog,
    cfg: FitConfig | None = None,
    *,
    k: int = 10,
    test_share: float = 0.2,
    split: Split = "global",
    replay: bool = True,
) -> EvalReport:
    """Fit on the early part of `log`, score on the late part (see the module docstring)."""
    cfg = cfg or FitConfig()
    cut: int | None = None
    if split == "global":
        train, test, cut = temporal_split(log, test_share)
    elif split == "user":
        train, test = user_split(log, test_share)
    else:
        msg = f"unknown split {split!r}: use global or user"
        raise ValueError(msg)
    t0 = time.perf_counter()
    scorer = Scorer(fit(train, cfg), cfg.scoring)
    fit_s = time.perf_counter() - t0
    popular = _Popular(scorer, train)
    scores, cold = _batch(scorer, popular, test, k)
    if replay and split == "global":
        scores += _replay(scorer, popular, test, k)
    return EvalReport(
        source=log.source,
        split=split,
        k=k,
        cut=cut,
        train_interactions=len(train),
        test_interactions=len(test),
        catalogue=scorer.n_items,
        users_cold=cold,
        scores=scores,
        fit_s=fit_s,
        eval_s=time.perf_counter() - t0 - fit_s,
    )


def _batch(scorer: Scorer, popular: _Popular, test: InteractionLog, k: int) -> tuple[list[ModelScore], int]:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    test_items: dict[str, set[str]] = {}
    for user, item in zip(test.users.tolist(), test.items.tolist(), strict=True):
        test_items.setdefault(user, set()).add(item)
    sums = {MODEL: [0.0, 0.0], POPULAR: [0.0, 0.0]}
    evaluated = cold = 0
    for user, items in test_items.items():
        seen_idx = scorer.batch_history(user).tolist()
        if not seen_idx:
            cold += 1
            continue
        seen = set(seen_idx)
        relevant = {i for i in map(scorer.index.get, items) if i is not None and i not in seen}
        if not relevant:
            continue
        evaluated += 1
        ideal = float(discounts[: min(k, len(relevant))].sum())
        for name, ranked in (
            (MODEL, scorer.recommend(user, (), k).items),
            (POPULAR, popular.top(k, seen)),
        ):
            hits = np.array([scorer.index[item] in relevant for item in ranked], dtype=np.float64)
            sums[name][0] += hits.sum() / len(relevant)
            sums[name][1] += float((hits * discounts[: len(hits)]).sum()) / ideal
    n = max(evaluated, 1)
    return [ModelScore("batch", name, float(r / n), float(g / n), evaluated) for name, (r, g) in sums.items()], cold


def _replay(scorer: Scorer, popular: _Popular, test: InteractionLog, k: int) -> list[ModelScore]:
    recent: dict[str, list[str]] = {}
    seen: dict[str, set[int]] = {}
    sums = {MODEL: [0.0, 0.0], POPULAR: [0.0, 0.0]}
    events = 0
    for user, item in zip(test.users.tolist(), test.items.tolist(), strict=True):
        idx = scorer.index.get(item)
        if user not in seen:
            seen[user] = set(scorer.batch_history(user).tolist())
            recent[user] = []
        if idx is not None and idx not in seen[user]:
            events += 1
            for name, ranked in (
                (MODEL, scorer.recommend(user, recent[user][-REALTIME_ITEMS:], k).items),
                (POPULAR, popular.top(k, seen[user])),
            ):
                if item in ranked:
                    sums[name][0] += 1.0
                    sums[name][1] += 1.0 / np.log2(ranked.index(item) + 2)
        recent[user].append(item)
        if idx is not None:
            seen[user].add(idx)
    n = max(events, 1)
    return [ModelScore("replay", name, float(r / n), float(g / n), events) for name, (r, g) in sums.items()]
