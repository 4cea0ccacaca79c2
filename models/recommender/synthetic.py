"""Seeded interactions with structure (taste clusters, Zipf popularity) for tests and benchmarks.

Items fall into `clusters` groups; each user likes one or two groups and picks items there (popular ones
more often), now and then one from anywhere. So items of a group co-occur and a co-occurrence model has
something to find, which popularity alone does not.
"""

from __future__ import annotations

import numpy as np

from models.recommender.data import InteractionLog

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def synthetic_log(
    users: int = 1000,
    items: int = 500,
    per_user: int = 20,
    *,
    clusters: int = 20,
    noise: float = 0.1,
    days: int = 60,
    seed: int = 0,
) -> InteractionLog:
    """`users × per_user` interactions over `items` items ("i0".."i{items-1}"), users "u0".., seeded."""
    rng = np.random.default_rng(seed)
    cluster_of = rng.integers(0, clusters, items)
    members = [np.flatnonzero(cluster_of == c) for c in range(clusters)]
    zipf = 1.0 / np.arange(1, items + 1) ** 0.8
    weight = zipf[rng.permutation(items)]
    n = users * per_user
    user = np.repeat(np.arange(users), per_user)
    likes = rng.integers(0, clusters, (users, 2))
    second = rng.random(n) < 0.3
    cluster = np.where(second, likes[user, 1], likes[user, 0])
    item = np.empty(n, dtype=np.int64)
    for c in range(clusters):
        pos = np.flatnonzero(cluster == c)
        if not len(pos):
            continue
        pool = members[c] if len(members[c]) else np.arange(items)
        p = weight[pool] / weight[pool].sum()
        item[pos] = rng.choice(pool, len(pos), p=p)
    stray = rng.random(n) < noise
    item[stray] = rng.choice(items, int(stray.sum()), p=weight / weight.sum())
    ts = T0 + rng.integers(0, days * 86400, n)
    return InteractionLog.from_arrays(
        np.char.add("u", user.astype(str)), np.char.add("i", item.astype(str)), ts, f"synthetic(seed={seed})"
    )
