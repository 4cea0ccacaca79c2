"""The recommender's scoring and real-time state (numpy only), and the HTTP endpoints in-process."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from engine.serve.recarrays import RecArrays, RecArraysError
from engine.serve.recommend import RealtimeState, Scorer, ScoringParams


def _arrays() -> RecArrays:
    """5 items: a-b-c are one group, d-e another; user u1 saw a, user u2 saw d and e."""
    items = np.array(["a", "b", "c", "d", "e"])
    neighbors = np.array([[1, 2], [0, 2], [0, 1], [4, 3], [3, 4]], dtype=np.int32)
    similarity = np.array([[0.9, 0.5], [0.9, 0.4], [0.5, 0.4], [0.8, 0.0], [0.8, 0.0]], dtype=np.float32)
    return RecArrays(
        items=items,
        neighbors=neighbors,
        similarity=similarity,
        popularity=np.array([5, 1, 2, 9, 3], dtype=np.float32),
        users=np.array(["u1", "u2"]),
        hist_ptr=np.array([0, 1, 3]),
        hist_items=np.array([0, 3, 4], dtype=np.int32),
    )


def test_known_user_gets_neighbours_of_their_history_and_never_a_seen_item() -> None:
    rec = Scorer(_arrays(), ScoringParams(recency_half_life=0)).recommend("u1", (), 2)
    assert rec.source == "model" and rec.items == ["b", "c"]


def test_unknown_user_falls_back_to_popularity() -> None:
    rec = Scorer(_arrays()).recommend("stranger", (), 3)
    assert rec.source == "popularity" and rec.items == ["d", "a", "e"]


def test_a_fresh_interaction_changes_the_next_recommendation() -> None:
    scorer = Scorer(_arrays())
    before = scorer.recommend("stranger", (), 2).items
    after = scorer.recommend("stranger", ("b",), 2)
    assert before == ["d", "a"]
    assert after.source == "model" and after.items == ["a", "c"]


def test_the_catalogue_can_run_out_and_k_is_capped() -> None:
    scorer = Scorer(_arrays())
    assert scorer.recommend("u2", ("a", "b", "c"), 10).items == []
    assert len(scorer.recommend("u1", (), 10).items) == 4


def test_items_unknown_to_the_model_are_ignored() -> None:
    assert Scorer(_arrays()).recommend("stranger", ("zzz",), 2).source == "popularity"


def test_realtime_state_is_bounded_and_survives_a_snapshot() -> None:
    state = RealtimeState(per_user=3, max_users=2)
    for item in "abcd":
        state.add("u1", item)
    state.add("u1", "c")  # seen again: moves to the end, not doubled
    assert state.recent("u1") == ("b", "d", "c")
    state.add("u2", "x")
    state.add("u3", "y")  # evicts the least recently active user (u1)
    assert len(state) == 2 and state.recent("u1") == ()
    copy = RealtimeState(3, 2)
    copy.restore(RealtimeState.decode(state.to_json({"seg": 10})))
    assert copy.recent("u2") == ("x",) and copy.recent("u3") == ("y",)
    assert RealtimeState.decode(state.to_json({"seg": 10})).positions == {"seg": 10}


def test_arrays_round_trip_without_pickle_and_refuse_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(_arrays().to_bytes())
    loaded = RecArrays.load(path)
    assert loaded.items.tolist() == ["a", "b", "c", "d", "e"]
    with zipfile.ZipFile(path) as z:
        assert "format.npy" in z.namelist()
    other = tmp_path / "other.npz"
    buf = io.BytesIO()
    np.savez(buf, format=np.array("something/else"))
    other.write_bytes(buf.getvalue())
    with pytest.raises(RecArraysError, match="format"):
        RecArrays.load(other)


def test_arrays_with_out_of_range_indices_are_refused() -> None:
    a = _arrays()
    with pytest.raises(RecArraysError, match="outside the catalogue"):
        RecArrays(a.items, a.neighbors + 10, a.similarity, a.popularity, a.users, a.hist_ptr, a.hist_items)


def test_recommendations_over_http_reflect_an_interaction_at_once(client: TestClient) -> None:
    first = client.get("/v1/recommendations/visitor-1?k=5")
    assert first.status_code == 200, first.text
    assert first.json()["source"] == "popularity" and len(first.json()["items"]) == 5
    item = first.json()["items"][2]["item_id"]
    r = client.post(
        "/v1/interactions",
        json={
            "interactions": [{"user_id": "visitor-1", "item_id": item, "event": "click", "ts": "2024-06-01T12:00:00Z"}]
        },
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["spooled"] is True
    second = client.get("/v1/recommendations/visitor-1?k=5").json()
    assert second["source"] == "model"
    assert item not in [i["item_id"] for i in second["items"]]
    assert second["items"] != first.json()["items"]


def test_interaction_rejects_are_explained_and_all_bad_is_a_422(client: TestClient) -> None:
    good = {"user_id": "u", "item_id": "i1", "event": "view", "ts": "2024-06-01T12:00:00Z"}
    mixed = [
        good,
        {"user_id": "u", "item_id": "i1", "event": "teleport", "ts": "2024-06-01T12:00:00Z"},
        {"user": "x"},
        7,
    ]
    r = client.post("/v1/interactions", json={"interactions": mixed})
    body = r.json()
    assert r.status_code == 200 and (body["received"], body["accepted"], body["rejected"]) == (4, 1, 3)
    assert [x["index"] for x in body["rejects"]] == [1, 2, 3]
    assert "event" in body["rejects"][0]["message"]
    bad = client.post("/v1/interactions", json={"interactions": [{"user_id": "u"}]})
    assert bad.status_code == 422 and "item_id" in bad.text
    assert client.post("/v1/interactions", json={"interactions": []}).status_code == 400
    assert client.post("/v1/interactions", json={"records": []}).status_code == 400


@pytest.mark.parametrize("query", ["k=0", "k=abc", "k=101", "k=-1"])
def test_bad_k_is_a_4xx(client: TestClient, query: str) -> None:
    r = client.get(f"/v1/recommendations/u1?{query}")
    assert r.status_code == 400 and "k" in r.text


def _ranked_over_every_item(scorer: Scorer, user_id: str, recent: tuple[str, ...], k: int) -> list[str]:
    """The spec of `recommend` for known histories: score every item of the catalogue, drop the seen ones,
    sort by score (ties by popularity rank)."""
    batch = scorer.batch_history(user_id)
    fresh = np.array([scorer.index[i] for i in recent if i in scorer.index], dtype=np.intp)
    p = scorer.params
    scored = batch[-p.history_cap :] if p.history_cap > 0 else batch
    hist = np.concatenate([scored, fresh])
    weights = scorer._decay_table(hist.size)[: hist.size][::-1].copy()
    weights[scored.size :] *= p.realtime_weight
    scores = np.bincount(
        scorer._neighbors[hist].ravel(),
        weights=(scorer._sim[hist] * weights[:, None]).ravel(),
        minlength=scorer.n_items,
    )
    scores += scorer._pop_eps
    unseen = np.setdiff1d(np.arange(scorer.n_items), np.concatenate([batch, fresh]))
    order = unseen[np.lexsort((scorer._pop_rank[unseen], -scores[unseen]))][:k]
    return [scorer.item_ids[i] for i in order.tolist()]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_top_k_over_candidates_equals_ranking_every_item(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30), label="items")
    k_nb = data.draw(st.integers(1, 4), label="neighbours")
    ints = st.integers(0, n - 1)
    neighbors = np.array(data.draw(st.lists(st.lists(ints, min_size=k_nb, max_size=k_nb), min_size=n, max_size=n)))
    # few distinct values, so ties (between candidates, and with the popularity backfill) are common
    sims = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    similarity = np.array(data.draw(st.lists(st.lists(sims, min_size=k_nb, max_size=k_nb), min_size=n, max_size=n)))
    popularity = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 5.0]), min_size=n, max_size=n)))
    history = data.draw(st.lists(ints, min_size=1, max_size=8), label="history")
    arrays = RecArrays(
        items=np.array([f"i{j}" for j in range(n)]),
        neighbors=neighbors.astype(np.int32),
        similarity=similarity.astype(np.float32),
        popularity=popularity.astype(np.float32),
        users=np.array(["u"]),
        hist_ptr=np.array([0, len(history)]),
        hist_items=np.array(history, dtype=np.int32),
    )
    params = ScoringParams(
        history_cap=data.draw(st.sampled_from([0, 2, 200])),
        recency_half_life=data.draw(st.sampled_from([0.0, 2.0])),
        popularity_weight=data.draw(st.sampled_from([0.0, 1e-3, 1.0])),
    )
    scorer = Scorer(arrays, params)
    recent = tuple(data.draw(st.lists(st.sampled_from([f"i{j}" for j in range(n)] + ["unknown"]), max_size=4)))
    k = data.draw(st.integers(1, n + 2), label="k")
    assert scorer.recommend("u", recent, k).items == _ranked_over_every_item(scorer, "u", recent, k)
