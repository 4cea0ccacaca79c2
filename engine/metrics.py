"""Every Prometheus metric tidegate exports, declared once (ARCHITECTURE.md: Metrics).

Flows update them per micro-batch (one `inc(n)` per batch, not per event). `serve_metrics(port)` exposes
the default registry on /metrics for a flow process; the dashboard server exposes it on its own /metrics.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS = Counter(
    "tidegate_events_total",
    "Events per flow step and outcome (received, accepted, rejected, late, duplicate, stored).",
    ["flow", "step", "outcome"],
)
WINDOW_CLOSE_LAG = Histogram(
    "tidegate_window_close_lag_seconds",
    "System time at which a window closed minus the window's end (event time).",
    ["flow"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
END_TO_END = Histogram(
    "tidegate_end_to_end_latency_seconds",
    "Event time of a reading to the moment it was stored.",
    ["flow"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
ANOMALIES = Counter("tidegate_anomalies_total", "Anomalies flagged.", ["flow", "measurement", "kind"])
MQTT_CONNECTED = Gauge("tidegate_mqtt_connected", "1 while the MQTT source partition is connected.", ["client"])
MQTT_CONNECTS = Counter("tidegate_mqtt_connects_total", "MQTT (re)connections of the source.", ["client"])
MQTT_ACKED = Counter("tidegate_mqtt_acked_total", "Messages acknowledged to the broker.", ["client"])
OPEN_WINDOWS = Gauge("tidegate_open_windows", "Windows currently open.", ["flow", "shard"])


@functools.lru_cache(maxsize=1024)
def events(flow: str, step: str, outcome: str) -> Any:
    """`EVENTS.labels(flow, step, outcome)`, resolved once per label set (`labels()` costs ~1 us a call, and
    a flow counts a few outcomes per micro-batch)."""
    return EVENTS.labels(flow, step, outcome)


def observe_many(child: Any, values: np.ndarray) -> None:
    """`child.observe(v)` for every value, as one bucket count per bucket (a flow stores 10 000 readings a
    second: observing them one by one was about half of the DuckDB sink's time). `child` is a labelled
    Histogram; the result is the same as observing each value (tests/engine/test_metrics.py checks it)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return
    bounds = np.asarray(child._upper_bounds, dtype=np.float64)  # ends with +Inf
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=bounds.size)
    child._sum.inc(float(values.sum()))
    for i in np.flatnonzero(counts[: bounds.size]).tolist():
        child._buckets[i].inc(int(counts[i]))


def serve_metrics(port: int, addr: str = "127.0.0.1") -> None:
    """Serve /metrics on `addr:port` from a background thread."""
    start_http_server(port, addr=addr)
