"""Bulk histogram observations equal observing each value (prometheus_client's own per-value path)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from engine.metrics import observe_many

BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0)


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    ra, rb = CollectorRegistry(), CollectorRegistry()
    a = Histogram("lag_seconds", "lag", ["flow"], buckets=BUCKETS, registry=ra)
    b = Histogram("lag_seconds", "lag", ["flow"], buckets=BUCKETS, registry=rb)
    return ra, a, rb, b


# values on bucket bounds, between them, beyond the last, negative
values = st.lists(st.sampled_from([*BUCKETS, -1.0, 0.0, 0.05, 0.7, 3.0, 9.0, 1e9]) | st.floats(-10, 100), max_size=60)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(values, max_size=4))
def test_observe_many_equals_observing_each_value(batches: list[list[float]]) -> None:
    ra, a, rb, b = _pair()
    one, bulk = a.labels("iot"), b.labels("iot")
    for batch in batches:
        for v in batch:
            one.observe(v)
        observe_many(bulk, np.array(batch))
    (sum_a, rest_a), (sum_b, rest_b) = _samples(ra), _samples(rb)
    assert rest_a == rest_b  # bucket counts and count: exactly equal
    assert sum_b == pytest.approx(sum_a, rel=1e-12, abs=1e-9)  # summed in another order


def _samples(registry: CollectorRegistry) -> tuple[float, list[str]]:
    """The sum, and every other sample line but the `_created` timestamps (they differ by construction)."""
    lines = generate_latest(registry).decode().splitlines()
    total = sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("lag_seconds_sum"))
    rest = [line for line in lines if "_created" not in line and not line.startswith("lag_seconds_sum")]
    return total, rest
