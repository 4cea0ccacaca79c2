"""POST /v1/predict/{model}: real ONNX Runtime sessions from a real registry, in-process client."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from onnx import TensorProto, helper

from engine.registry import Manifest, Registry, TensorSpec
from engine.serve.app import create_app
from engine.serve.config import ServeConfig
from engine.serve.models import classes_post
from tests.serve.builders import churn_instances, direct_probabilities


def test_predictions_match_onnx_runtime_and_apply_the_manifest_threshold(
    client: TestClient, registry: Registry, serve_dir: Path
) -> None:
    instances = churn_instances(serve_dir, 25)
    r = client.post("/v1/predict/churn", json={"instances": instances})
    assert r.status_code == 200, r.text
    body = r.json()
    man, path = registry.artifact("churn")
    assert (body["model"], body["version"]) == ("churn", man.version)
    expected = direct_probabilities(man, path, instances)
    got = np.array([p["probabilities"][man.positive_label] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    other = next(label for label in man.labels if label != man.positive_label)
    labels = [p["label"] for p in body["predictions"]]
    assert labels == [man.positive_label if p >= man.threshold else other for p in expected]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in body["predictions"])


def test_null_values_are_missing_and_extra_keys_are_ignored(client: TestClient, serve_dir: Path) -> None:
    inst = churn_instances(serve_dir, 1)[0]
    blank = dict.fromkeys(inst) | {"unrelated": [1, 2]}
    r = client.post("/v1/predict/churn", json={"instances": [blank]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] in ("Yes", "No")


def _instance(serve_dir: Path, **change: Any) -> dict[str, Any]:
    inst = churn_instances(serve_dir, 1)[0]
    for k, v in change.items():
        if v is ...:
            inst.pop(k)
        else:
            inst[k] = v
    return inst


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        (b"{not json", 400, "malformed"),
        (b'{"instances": "x"}', 400, "instances"),
        (b"[1, 2]", 400, "object"),
        (b'{"rows": []}', 400, "rows"),
        (b'{"instances": []}', 400, "instances"),
        (b'{"instances": [1]}', 400, "object"),
        ("missing", 400, "instances[0].contract"),
        ("wrong-number", 400, "instances[0].tenure_months"),
        ("wrong-string", 400, "instances[0].contract"),
        ("bool", 400, "instances[0].monthly_charges"),
        ("huge", 400, "instances[0].tenure_months"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_field(
    client: TestClient, serve_dir: Path, body: bytes | str, status: int, names: str
) -> None:
    bad = {
        "missing": _instance(serve_dir, contract=...),
        "wrong-number": _instance(serve_dir, tenure_months="twelve"),
        "wrong-string": _instance(serve_dir, contract=3),
        "bool": _instance(serve_dir, monthly_charges=True),
        "huge": _instance(serve_dir, tenure_months=10**39),  # beyond float32
    }
    if isinstance(body, str):
        r = client.post("/v1/predict/churn", json={"instances": [bad[body]]})
    else:
        r = client.post("/v1/predict/churn", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert names in r.text


def test_unknown_model_is_404_naming_what_is_served(client: TestClient, serve_dir: Path) -> None:
    r = client.post("/v1/predict/nope", json={"instances": churn_instances(serve_dir, 1)})
    assert r.status_code == 404
    assert "nope" in r.json()["detail"] and "churn" in r.json()["detail"]


def test_a_batch_runs_as_one_call_and_keeps_row_order(client: TestClient, serve_dir: Path) -> None:
    # 40 rows: a batch is post-processed with numpy, a single row in plain Python; the numbers are the same
    instances = churn_instances(serve_dir, 40)
    one_by_one = [client.post("/v1/predict/churn", json={"instances": [i]}).json()["predictions"][0] for i in instances]
    batch = client.post("/v1/predict/churn", json={"instances": instances}).json()["predictions"]
    assert [p["label"] for p in batch] == [p["label"] for p in one_by_one]
    for a, b in zip(batch, one_by_one, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
        assert a["probabilities"] == b["probabilities"]  # ORT is row-independent here: exactly equal


@settings(max_examples=2000, deadline=None)
@given(st.floats(0, 1, width=32))
def test_the_python_rounding_of_few_rows_is_numpys(x: float) -> None:
    assert round(x * 1e6) / 1e6 == float(np.round(np.float64(x), 6))


def test_too_many_instances_is_refused(client: TestClient, serve_dir: Path) -> None:
    inst = churn_instances(serve_dir, 1)[0]
    r = client.post("/v1/predict/churn", json={"instances": [inst] * 1025})
    assert r.status_code == 400 and "1024" in r.json()["detail"]


def _typed_registry(folder: Path) -> Registry:
    """A hand-built regression graph with an int64 and a float64 input: y = float(count) + amount."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.DOUBLE),
            helper.make_node("Add", ["count_f", "amount"], ["y"]),
        ],
        "typed",
        [
            helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1]),
            helper.make_tensor_value_info("amount", TensorProto.DOUBLE, [None, 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    registry = Registry(folder / "registry")
    man = Manifest(
        name="typed",
        version=1,
        kind="onnx",
        task="regression",
        artifact="model.onnx",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        inputs=(
            TensorSpec(name="count", dtype="int64", column="count"),
            TensorSpec(name="amount", dtype="float64", column="amount"),
        ),
    )
    onnx.checker.check_model(model)
    registry.register(man, data, promote=True)
    return registry


def test_int64_and_float64_inputs_are_fed_with_their_own_types(tmp_path: Path) -> None:
    registry = _typed_registry(tmp_path)
    cfg = ServeConfig(registry=str(registry.root), models=("typed",), watch_interval_s=0, log_level="warning")
    with TestClient(create_app(cfg)) as c:
        rows = [{"count": 3, "amount": 0.25}, {"count": 2**40, "amount": None}]
        for body in ({"instances": rows}, {"instances": rows[:1]}):
            r = c.post("/v1/predict/typed", json=body)
            assert r.status_code == 200, r.text
        values = [p["value"] for p in c.post("/v1/predict/typed", json={"instances": rows}).json()["predictions"]]
        assert values == [3.25, None]  # a null float64 is NaN, and NaN goes out as JSON null
        for bad, field in (({"count": 1.5, "amount": 1.0}, "count"), ({"count": None, "amount": 1.0}, "count")):
            for n in (1, 2):
                r = c.post("/v1/predict/typed", json={"instances": [bad] * n})
                assert r.status_code == 400 and f"instances[0].{field}" in r.text, r.text


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    classes=st.sampled_from([2, 2, 3]),
    positive=st.sampled_from([None, 0, 1]),
    threshold=st.one_of(st.none(), st.floats(0, 1, width=32)),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_every_post_processing_path_gives_numpys_labels_and_probabilities(
    n: int, classes: int, positive: int | None, threshold: float | None, seed: int, ties: bool
) -> None:
    rng = np.random.default_rng(seed)
    out = rng.random((n, classes)).astype(np.float32)
    if ties:  # equal probabilities, and probabilities exactly at the threshold
        out[::2] = np.float32(1 / classes)
        if threshold is not None:
            out[1::3, 0] = out[1::3, -1] = np.float32(threshold)
    labels = [f"c{i}" for i in range(classes)]
    if classes != 2:
        positive = None
    got = classes_post(labels, positive, threshold)(out)
    p64 = out.astype(np.float64)
    if positive is not None and threshold is not None:
        chosen = np.where(p64[:, positive] >= threshold, positive, 1 - positive)
    else:
        chosen = p64.argmax(axis=1)
    assert [p.label for p in got] == [labels[c] for c in chosen.tolist()]
    assert [list(p.probabilities.values()) for p in got] == p64.round(6).tolist()  # type: ignore[union-attr]
    assert all(list(p.probabilities) == labels for p in got)  # type: ignore[arg-type]
