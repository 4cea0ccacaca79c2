"""`tidegate serve` carries /v1/classify beside the tabular API (full image path: test_classify.py)."""

from __future__ import annotations

import io

from litestar.testing import TestClient
from PIL import Image


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_classify_route_is_mounted_and_answers_4xx_for_non_image_models(client: TestClient) -> None:
    unknown = client.post("/v1/classify/nope", content=_png(), headers={"content-type": "image/png"})
    assert unknown.status_code == 404 and "nope" in unknown.text
    tabular = client.post("/v1/classify/churn", content=_png(), headers={"content-type": "image/png"})
    assert 400 <= tabular.status_code < 500 and "churn" in tabular.text
    # The tabular API is unaffected.
    assert client.get("/health/live").status_code == 200
