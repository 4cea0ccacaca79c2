"""Adaptive micro-batching: concurrent predictions share one ONNX call, each request gets exactly its rows'
results, and one request's failure never becomes another's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from engine.registry import Registry
from engine.serve.app import create_app
from engine.serve.batching import Coalescer
from engine.serve.config import ServeConfig
from tests.serve.builders import churn_instances, direct_probabilities


class Recorder:
    """`run` for a Coalescer: squares its rows and records every call; a row of -1 makes the call fail."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, rows: list[int]) -> list[int]:
        self.calls.append(list(rows))
        if -1 in rows:
            msg = "poisoned row"
            raise ValueError(msg)
        return [r * r for r in rows]


def test_requests_ready_together_share_one_call_and_get_their_own_rows() -> None:
    run = Recorder()
    seen: list[tuple[int, int]] = []
    c = Coalescer(run, max_rows=100, observe=lambda rows, requests, s: seen.append((rows, requests)))

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(c.submit(list(range(i, i + i % 3 + 1))) for i in range(10)))

    results = asyncio.run(main())
    assert results == [[r * r for r in range(i, i + i % 3 + 1)] for i in range(10)]
    assert len(run.calls) == 1 and seen == [(len(run.calls[0]), 10)]


def test_a_batch_is_capped_at_max_rows_and_a_bigger_request_runs_alone() -> None:
    run = Recorder()
    c = Coalescer(run, max_rows=4)

    async def main() -> list[list[int]]:
        sizes = [1, 2, 1, 6, 3, 1]
        return await asyncio.gather(*(c.submit([n] * n) for n in sizes))

    results = asyncio.run(main())
    assert results == [[n * n] * n for n in [1, 2, 1, 6, 3, 1]]
    assert [len(call) for call in run.calls] == [4, 6, 4]  # 1+2+1 | 6 alone | 3+1
    assert all(len(call) <= 4 or len(set(call)) == 1 for call in run.calls)


def test_one_failing_request_fails_alone() -> None:
    run = Recorder()
    c = Coalescer(run)

    async def main() -> list[Any]:
        return await asyncio.gather(c.submit([2]), c.submit([-1, 3]), c.submit([4]), return_exceptions=True)

    ok1, bad, ok2 = asyncio.run(main())
    assert ok1 == [4] and ok2 == [16]
    assert isinstance(bad, ValueError) and "poisoned" in str(bad)
    assert run.calls[0] == [2, -1, 3, 4]  # tried together first, then each on its own
    assert sorted(run.calls[1:]) == [[-1, 3], [2], [4]]


def test_a_cancelled_request_does_not_break_the_batch() -> None:
    run = Recorder()
    c = Coalescer(run)

    async def main() -> tuple[list[int], list[int]]:
        doomed = asyncio.ensure_future(c.submit([5]))
        a, b = asyncio.ensure_future(c.submit([1])), asyncio.ensure_future(c.submit([2]))
        await asyncio.sleep(0)  # every submit is pending now
        doomed.cancel()
        return await a, await b

    assert asyncio.run(main()) == ([1], [4])


def test_lone_requests_each_run_once() -> None:
    run = Recorder()
    c = Coalescer(run)

    async def main() -> list[list[int]]:
        return [await c.submit([i]) for i in range(5)]

    assert asyncio.run(main()) == [[i * i] for i in range(5)]
    assert run.calls == [[i] for i in range(5)]


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        Coalescer(Recorder(), max_rows=0)
    with pytest.raises(ValueError, match="max_wait_iterations"):
        Coalescer(Recorder(), max_wait_iterations=-1)


async def _trickle(c: Coalescer[int, int], count: int) -> list[list[int]]:
    """`count` requests, one more in each event-loop iteration (as a server hands them over under load)."""
    tasks = []
    for i in range(count):
        tasks.append(asyncio.ensure_future(c.submit([i])))
        await asyncio.sleep(0)  # one loop iteration
    return list(await asyncio.gather(*tasks))


@pytest.mark.parametrize(("wait", "calls"), [(0, [[0], [1], [2], [3], [4], [5]]), (8, [[0, 1, 2, 3, 4, 5]])])
def test_a_batch_waits_while_requests_keep_arriving(wait: int, calls: list[list[int]]) -> None:
    run = Recorder()
    c = Coalescer(run, max_wait_iterations=wait)
    assert asyncio.run(_trickle(c, 6)) == [[i * i] for i in range(6)]
    assert run.calls == calls


def test_a_batch_waits_at_most_max_wait_iterations() -> None:
    run = Recorder()
    c = Coalescer(run, max_wait_iterations=3)
    assert asyncio.run(_trickle(c, 10)) == [[i * i] for i in range(10)]
    assert max(len(call) for call in run.calls) <= 4 and sum(len(call) for call in run.calls) == 10
    assert len(run.calls) < 10  # still batched


async def _post(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """One request straight through the ASGI app (no server: the test controls the event loop)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_concurrent_predictions_share_a_call_and_each_matches_onnx_runtime(serve_dir: Path, registry: Registry) -> None:
    instances = churn_instances(serve_dir, 24)
    man, path = registry.artifact("churn")
    expected = direct_probabilities(man, path, instances)
    cfg = ServeConfig(registry=str(serve_dir / "registry"), watch_interval_s=0, log_level="warning")
    app = create_app(cfg)
    # requests of 1, 2 and 3 rows, plus one bad request in the middle of the batch
    sizes = [1, 2, 3, 1, 2, 3, 3, 3, 3, 3]
    starts = np.cumsum([0, *sizes[:-1]]).tolist()
    parts = [instances[i : i + n] for i, n in zip(starts, sizes, strict=True)]
    bodies = [msgspec.json.encode({"instances": p}) for p in parts]
    bad = msgspec.json.encode({"instances": [{**instances[0], "tenure_months": "many"}]})

    async def main() -> list[tuple[int, bytes]]:
        async with app.lifespan():
            return await asyncio.gather(
                *(_post(app, "/v1/predict/churn", b) for b in [*bodies[:5], bad, *bodies[5:]]),
                _metrics(app),
            )

    async def _metrics(app: Any) -> tuple[int, bytes]:
        await asyncio.sleep(0.05)  # after the batch
        return 200, app.state.svc.metrics.render()

    *answers, (_, metrics) = asyncio.run(main())
    statuses = [s for s, _ in answers]
    assert statuses == [200] * 5 + [400] + [200] * 5
    assert b"tenure_months" in answers[5][1]
    got = [msgspec.json.decode(b)["predictions"] for s, b in answers if s == 200]
    start = 0
    for part, preds in zip(parts, got, strict=True):
        assert len(preds) == len(part)
        probs = np.array([p["probabilities"][man.positive_label] for p in preds])
        np.testing.assert_allclose(probs, expected[start : start + len(part)], atol=1e-6)
        start += len(part)
    text = metrics.decode()
    # the 10 good requests (24 rows) ran as one ONNX call (the bad one never reached the model)
    assert 'tidegate_predict_batch_requests_count{model="churn"} 1.0' in text, text
    assert 'tidegate_predict_batch_requests_sum{model="churn"} 10.0' in text
    assert 'tidegate_predict_batch_rows_sum{model="churn"} 24.0' in text
    assert f'tidegate_predictions_total{{model="churn",version="{man.version}"}} 24.0' in text
