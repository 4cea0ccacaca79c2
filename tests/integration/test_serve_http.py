"""`tidegate serve` as a real process on 127.0.0.1: predictions match ONNX Runtime, an interaction changes the
next recommendation within 1 s, bad input is a 4xx, hot swap under load loses nothing, the flow stores."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

from engine.registry import Registry
from flows.interactions import run_interactions
from tests.integration.serve_process import serving
from tests.serve.builders import TOKEN, build_registry, churn_instances, direct_probabilities

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve_http")
    build_registry(folder)
    (folder / "serve.toml").write_text("[serve]\nwatch_interval_s = 0.2\nlog_level = 'info'\n")
    return folder


@pytest.fixture(scope="module")
def server(work: Path) -> Iterator[str]:
    args = ("--registry", str(work / "registry"), "--spool", str(work / "spool"), "--config", str(work / "serve.toml"))
    with serving(*args, env={"TIDEGATE_ADMIN_TOKEN": TOKEN}, log=work / "server.log") as url:
        yield url


def test_predictions_over_http_match_onnx_runtime(server: str, work: Path) -> None:
    instances = churn_instances(work, 30)
    r = httpx.post(f"{server}/v1/predict/churn", json={"instances": instances}, timeout=10)
    assert r.status_code == 200, r.text
    man, path = Registry(work / "registry").artifact("churn")
    got = np.array([p["probabilities"]["Yes"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(got, direct_probabilities(man, path, instances), atol=1e-6)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/predict/churn", b"not json"),
        ("/v1/predict/churn", b'{"instances": [{"tenure_months": "x"}]}'),
        ("/v1/predict/churn", b'{"instances": [null]}'),
        ("/v1/predict/churn", b'{"instances": [{}], "extra": 1}'),
        ("/v1/predict/unknown", b'{"instances": [{}]}'),
        ("/v1/interactions", b'{"interactions": [{"user_id": ""}]}'),
        ("/v1/interactions", b'{"interactions": "x"}'),
        ("/v1/models/churn/promote", b'{"version": 2}'),
    ],
)
def test_bad_requests_are_4xx_over_http(server: str, path: str, body: bytes) -> None:
    r = httpx.post(f"{server}{path}", content=body, headers={"content-type": "application/json"}, timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    doc = r.json()
    assert doc.get("detail") or doc.get("rejects")


def test_an_interaction_changes_the_next_recommendation_within_a_second(server: str, work: Path) -> None:
    with httpx.Client(base_url=server, timeout=10) as c:
        before = [i["item_id"] for i in c.get("/v1/recommendations/shopper-9?k=10").json()["items"]]
        event = {"user_id": "shopper-9", "item_id": before[3], "event": "cart", "ts": "2024-06-01T12:00:00Z"}
        t0 = time.perf_counter()
        assert c.post("/v1/interactions", json={"interactions": [event]}).json()["accepted"] == 1
        after = c.get("/v1/recommendations/shopper-9?k=10").json()
        elapsed = time.perf_counter() - t0
    assert elapsed < 1.0
    assert after["source"] == "model" and before[3] not in [i["item_id"] for i in after["items"]]
    # what the server spooled, the flow stores (the server itself never opens DuckDB)
    stats = run_interactions(work / "spool", work / "t.duckdb", work / "state.json")
    assert stats.accepted >= 1
    with duckdb.connect(str(work / "t.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM interactions WHERE user_id = 'shopper-9'").fetchone() == (1,)


@pytest.mark.slow
def test_hot_swap_and_rollback_under_load_drop_no_request(server: str, work: Path) -> None:
    body = {"instances": churn_instances(work, 2)}
    sent, failed, versions = [0], [], set()
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=server, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/predict/churn", json=body)
                    ok, v = r.status_code == 200, r.json().get("version")
                except httpx.HTTPError as exc:
                    ok, v = False, repr(exc)
                with lock:
                    sent[0] += 1
                    if ok:
                        versions.add(v)
                    else:
                        failed.append(v)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    swaps = 0
    try:
        with httpx.Client(base_url=server, timeout=10, headers=AUTH) as admin:
            for _ in range(8):
                assert admin.post("/v1/models/churn/promote", json={"version": 2}).json()["serving"] == 2
                time.sleep(0.1)
                assert admin.post("/v1/models/churn/rollback").json()["serving"] == 1
                time.sleep(0.1)
                swaps += 2
        # a promote from the CLI (another process) is picked up by the server's registry watcher
        registry = str(work / "registry")
        subprocess.run(
            [sys.executable, "-m", "engine.cli", "models", "promote", "churn", "2", "--registry", registry],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 5
        while httpx.post(f"{server}/v1/predict/churn", json=body).json()["version"] != 2:
            assert time.monotonic() < deadline, "the CLI promote was not picked up"
            time.sleep(0.05)
        subprocess.run(
            [sys.executable, "-m", "engine.cli", "models", "rollback", "churn", "--registry", registry],
            check=True,
            capture_output=True,
            timeout=60,
        )
        swaps += 2
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join()
    print(f"hot swap under load: {sent[0]} requests, {len(failed)} failed, {swaps} swaps, versions {sorted(versions)}")
    assert failed == [] and sent[0] > 200 and versions == {1, 2}
    metrics = httpx.get(f"{server}/metrics").text
    assert 'tidegate_model_swaps_total{model="churn",outcome="ok"}' in metrics


def test_the_granian_option_serves_the_same_predictions(work: Path) -> None:
    """`--server granian` (the other measured candidate) still starts and answers like the default."""
    instances = churn_instances(work, 5)
    man, path = Registry(work / "registry").artifact("churn")
    with serving("--registry", str(work / "registry"), "--server", "granian", "--model", "churn") as url:
        r = httpx.post(f"{url}/v1/predict/churn", json={"instances": instances}, timeout=10)
    assert r.status_code == 200, r.text
    got = np.array([p["probabilities"]["Yes"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(got, direct_probabilities(man, path, instances), atol=1e-6)
