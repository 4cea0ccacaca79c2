"""The hot routes are raw ASGI mounts inside the Litestar app: they must still behave like Litestar routes
(methods, errors as JSON 4xx, metrics under the path template, OpenAPI documentation)."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from tests.serve.builders import churn_instances


def test_a_wrong_method_is_405_with_allow(client: TestClient) -> None:
    r = client.get("/v1/predict/churn")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = client.post("/v1/recommendations/u1")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_paths_with_no_or_several_segments_are_404(client: TestClient) -> None:
    assert client.post("/v1/predict", json={"instances": [{}]}).status_code == 404
    assert client.post("/v1/predict/churn/extra", json={"instances": [{}]}).status_code == 404
    assert client.get("/v1/recommendations/a/b").status_code == 404
    # a trailing slash is the same route, as on Litestar's own routes
    assert client.get("/v1/recommendations/u1/").status_code == 200


def test_a_body_over_the_cap_is_413_and_nothing_is_predicted(client: TestClient, serve_dir: Path) -> None:
    inst = churn_instances(serve_dir, 1)[0]
    big = {"instances": [inst] * 1000, "pad": "x" * (4 * 1024 * 1024)}
    r = client.post("/v1/predict/churn", json=big)
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]
    assert "tidegate_predictions_total{" not in client.get("/metrics").text  # nothing was predicted


def test_body_errors_name_the_field_and_count_as_bad_input(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    r = client.post("/v1/predict/churn", content=b'{"instances": [3]}', headers=json_type)
    assert r.status_code == 400
    assert r.json()["extra"] == {"field": "instances[0]"} and "Expected `object`" in r.json()["detail"]
    r = client.post("/v1/predict/churn", content=b'{"instances": [', headers=json_type)
    assert r.status_code == 400 and r.json()["detail"].startswith("malformed JSON body")
    text = client.get("/metrics").text
    assert 'tidegate_request_errors_total{model="churn",reason="bad_input",route="/v1/predict/{model}"} 2.0' in text
    assert 'tidegate_http_requests_total{method="POST",route="/v1/predict/{model}",status="400"} 2.0' in text


def test_the_openapi_schema_documents_the_fast_routes(client: TestClient) -> None:
    schema = client.get("/schema/openapi.json").json()
    predict = schema["paths"]["/v1/predict/{model}"]["post"]
    ref = predict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/PredictRequest") and "PredictRequest" in schema["components"]["schemas"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictResponse")
    rec = schema["paths"]["/v1/recommendations/{user_id}"]["get"]
    k = next(p for p in rec["parameters"] if p["name"] == "k")
    assert k["in"] == "query" and k["schema"]["maximum"] == 1000
    assert "RecommendationsResponse" in schema["components"]["schemas"]


def test_a_bug_behind_a_fast_route_is_a_bare_500_and_counted(client: TestClient, serve_dir: Path) -> None:
    model = client.app.state.svc.host.onnx["churn"]

    def broken(rows: list[object]) -> list[object]:
        msg = "internal detail that must not leak"
        raise RuntimeError(msg)

    model.predict_rows = broken  # type: ignore[method-assign]
    r = client.post("/v1/predict/churn", json={"instances": churn_instances(serve_dir, 1)})
    assert r.status_code == 500 and r.json() == {"status_code": 500, "detail": "Internal Server Error"}
    assert "internal detail" not in r.text
    assert 'tidegate_http_requests_total{method="POST",route="/v1/predict/{model}",status="500"} 1.0' in (
        client.get("/metrics").text
    )


def test_front_and_mount_render_errors_alike(client: TestClient) -> None:
    """`/v1/predict/x` is served in front of Litestar, `/v1/predict` by its mount inside: same error shape."""
    front = client.post("/v1/predict/nope", json={"instances": [{}]})
    inside = client.post("/v1/predict", json={"instances": [{}]})
    assert (front.status_code, inside.status_code) == (404, 404)
    assert set(front.json()) == set(inside.json()) == {"status_code", "detail"}
    assert front.headers["content-type"] == inside.headers["content-type"] == "application/json"


def test_a_body_with_invalid_utf8_is_a_400_on_every_json_route(client: TestClient) -> None:
    """msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8: bad input, not a 500."""
    body = b'{"instances": [{"gender": "F\xe6male"}]}'
    json_type = {"content-type": "application/json"}
    for path in ("/v1/predict/churn", "/v1/interactions"):
        r = client.post(path, content=body, headers=json_type)
        assert r.status_code == 400 and r.json()["detail"].startswith("malformed JSON body"), (path, r.text)
