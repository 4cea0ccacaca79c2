"""Every metric the server exports, declared once in a registry of its own (per app), and the ASGI
middleware that counts and times each request under its route template."""

from __future__ import annotations

import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """Every metric the server exports, declared once, in a registry of its own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "tidegate_http_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tidegate_http_request_duration_seconds",
            "Time from the request's arrival in the app to its last response byte, by route.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "tidegate_predictions_total", "Rows predicted, by model and version.", ["model", "version"], registry=r
        )
        self.inference = Histogram(
            "tidegate_inference_seconds",
            "ONNX Runtime time per /v1/predict batch, by model and version.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "tidegate_predict_batch_rows",
            "Rows per ONNX call on /v1/predict (concurrent requests share a call), by model.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "tidegate_predict_batch_requests",
            "Requests per ONNX call on /v1/predict (1 = the request ran alone), by model.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "tidegate_request_errors_total",
            "Requests refused, by route, model and reason (bad_input, unknown_model, not_loaded, …).",
            ["route", "model", "reason"],
            registry=r,
        )
        self.recommendations = Counter(
            "tidegate_recommendations_total",
            "Recommendation lists served, by model, version and source (model or popularity fallback).",
            ["model", "version", "source"],
            registry=r,
        )
        self.interactions = Counter(
            "tidegate_interactions_total", "Interaction records received, by outcome.", ["outcome"], registry=r
        )
        self.realtime_users = Gauge(
            "tidegate_realtime_users", "Users held in the real-time recommender state.", registry=r
        )
        self.live_version = Gauge("tidegate_model_version", "The version each model serves now.", ["model"], registry=r)
        self.swaps = Counter(
            "tidegate_model_swaps_total",
            "Model (re)loads, by model and outcome (ok, failed).",
            ["model", "outcome"],
            registry=r,
        )
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: the label sets (models, versions, routes) are few."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def on_swap(self, model: str, previous: int | None, version: int, outcome: str) -> None:
        self.swaps.labels(model, outcome).inc()
        if outcome == "ok":
            self.live_version.labels(model).set(version)

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._http.get(key)
        if children is None:  # label lookups are cached: routes are templates, so the set is small
            children = self._http[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def timing_middleware(metrics: ServeMetrics) -> Any:
    """ASGI middleware counting and timing every routed request under its path template."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t0 = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("path_template") or "unmatched"  # type: ignore[typeddict-item]
                metrics.observe_http(route, scope["method"], status, time.perf_counter() - t0)  # type: ignore[typeddict-item]

        return middleware

    return factory
