"""Admin (bearer token, promote/rollback with an immediate swap), health, metrics, OpenAPI, config, logs."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from engine.errors import UsageError
from engine.registry import Registry
from engine.serve.app import create_app
from engine.serve.config import ServeConfig, load_config
from engine.serve.logging import configure_logging, emit
from tests.serve.builders import TOKEN, churn_instances

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def own_registry(serve_dir: Path, tmp_path: Path) -> Path:
    """A copy of the shared registry that this test may promote and roll back."""
    shutil.copytree(serve_dir / "registry", tmp_path / "registry")
    return tmp_path / "registry"


def _client(registry: Path, **cfg: object) -> TestClient:
    base = {"registry": str(registry), "watch_interval_s": 0, "log_level": "warning"}
    return TestClient(create_app(ServeConfig(**(base | cfg))))  # type: ignore[arg-type]


@pytest.fixture
def admin(own_registry: Path) -> Iterator[TestClient]:
    with _client(own_registry, admin_token=TOKEN) as c:
        yield c


def test_admin_needs_a_bearer_token(admin: TestClient) -> None:
    assert admin.post("/v1/models/churn/rollback").status_code == 401
    assert admin.post("/v1/models/churn/rollback", headers={"Authorization": "Basic abc"}).status_code == 401
    assert admin.post("/v1/models/churn/rollback", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert admin.post("/v1/models/churn/promote", json={"version": 2}).status_code == 401


def test_admin_is_disabled_without_a_token(own_registry: Path) -> None:
    with _client(own_registry) as c:
        r = c.post("/v1/models/churn/promote", json={"version": 2}, headers=AUTH)
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_promote_and_rollback_swap_the_served_version_at_once(
    admin: TestClient, own_registry: Path, serve_dir: Path
) -> None:
    inst = {"instances": churn_instances(serve_dir, 5)}
    assert admin.post("/v1/predict/churn", json=inst).json()["version"] == 1
    r = admin.post("/v1/models/churn/promote", json={"version": 2}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"model": "churn", "action": "promote", "version": 2, "previous": 1, "serving": 2}
    v2 = admin.post("/v1/predict/churn", json=inst).json()
    assert v2["version"] == 2
    assert all(p["label"] == "No" or p["probabilities"]["Yes"] >= 0.9 for p in v2["predictions"])  # threshold 0.9
    assert Registry(own_registry).live("churn") == 2
    r = admin.post("/v1/models/churn/rollback", headers=AUTH)
    assert r.status_code == 200 and r.json()["serving"] == 1
    assert admin.post("/v1/predict/churn", json=inst).json()["version"] == 1
    # what the history does not allow is a 4xx, not a 5xx
    assert admin.post("/v1/models/churn/rollback", headers=AUTH).status_code == 409
    assert admin.post("/v1/models/churn/promote", json={"version": 9}, headers=AUTH).status_code == 404
    assert admin.post("/v1/models/nope/promote", json={"version": 1}, headers=AUTH).status_code == 404
    assert admin.post("/v1/models/churn/promote", json={"version": "two"}, headers=AUTH).status_code == 400


def test_a_version_that_fails_its_sha256_is_not_served(admin: TestClient, own_registry: Path, serve_dir: Path) -> None:
    (own_registry / "churn" / "2" / "model.onnx").write_bytes(b"tampered")
    r = admin.post("/v1/models/churn/promote", json={"version": 2}, headers=AUTH)
    assert r.status_code == 200 and r.json()["serving"] == 1  # the registry moved, the server kept v1
    assert admin.post("/v1/predict/churn", json={"instances": churn_instances(serve_dir, 1)}).status_code == 200
    assert 'tidegate_model_swaps_total{model="churn",outcome="failed"} 1.0' in admin.get("/metrics").text


def test_health_ready_metrics_and_openapi(client: TestClient, serve_dir: Path) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["models"] == {"churn": 1, "recommender": 1}
    client.post("/v1/predict/churn", json={"instances": churn_instances(serve_dir, 3)})
    client.post("/v1/predict/churn", json={"instances": [{}]})
    client.get("/v1/recommendations/someone")
    text = client.get("/metrics").text
    assert 'tidegate_http_requests_total{method="POST",route="/v1/predict/{model}",status="200"} 1.0' in text
    assert 'tidegate_http_requests_total{method="POST",route="/v1/predict/{model}",status="400"} 1.0' in text
    assert 'tidegate_predictions_total{model="churn",version="1"} 3.0' in text
    assert 'tidegate_request_errors_total{model="churn",reason="bad_input",route="/v1/predict/{model}"} 1.0' in text
    assert 'tidegate_recommendations_total{model="recommender",source="popularity",version="1"} 1.0' in text
    assert "tidegate_http_request_duration_seconds_bucket" in text
    schema = client.get("/schema/openapi.json").json()
    for path in ("/v1/predict/{model}", "/v1/interactions", "/v1/recommendations/{user_id}", "/health/ready"):
        assert path in schema["paths"], path
    assert client.get("/schema").status_code == 200


def test_not_ready_while_a_configured_model_is_missing(own_registry: Path) -> None:
    with _client(own_registry, models=("churn", "ghost")) as c:
        r = c.get("/health/ready")
        assert r.status_code == 503 and r.json()["missing"] == ["ghost"]
        assert c.post("/v1/predict/ghost", json={"instances": [{}]}).status_code == 503


def test_config_precedence_and_the_token_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[serve]\nport = 9001\nregistry = "from-file"\nmodels = ["churn"]\nadmin_token = "file-token"\n')
    cfg = load_config(path, env={"TIDEGATE_ADMIN_TOKEN": "env-token"}, port=None, registry=tmp_path)
    assert (cfg.port, cfg.registry, cfg.models, cfg.admin_token) == (9001, str(tmp_path), ("churn",), "env-token")
    assert "env-token" not in repr(cfg)
    assert ServeConfig.from_json(cfg.to_json()) == cfg
    path.write_text("port = 'eighty'\n")
    with pytest.raises(UsageError, match="port"):
        load_config(path)
    path.write_text("colour = 'blue'\n")
    with pytest.raises(UsageError, match="colour"):
        load_config(path)


def test_logs_are_json_lines() -> None:
    out = io.StringIO()
    log = configure_logging("info", out)
    emit(log, "model_loaded", model="churn", version=3)
    doc = json.loads(out.getvalue())
    assert doc["event"] == "model_loaded" and doc["model"] == "churn" and doc["level"] == "info" and "ts" in doc
    configure_logging("warning")
