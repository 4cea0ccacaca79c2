"""CI's gate for the image bench: ONNX Runtime vs torch single-image latency, as a ratio in the same run."""

from __future__ import annotations

import pytest

from bench import images_latency


@pytest.mark.bench
def test_quick_image_latency_meets_its_ratio_floor() -> None:
    results = images_latency.run(quick=True)
    ratio = next(r for r in results if r["metric"] == "ratio_single")
    assert "onnx median" in ratio["note"] and "decode+preprocess" in ratio["note"]
    assert images_latency.check(results) == [], ratio
