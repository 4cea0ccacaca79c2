"""Operations: liveness, readiness, Prometheus metrics (declared in `engine.serve.meters`).

GET /health/live     200 while the process serves
GET /health/ready    200 when every model the server was started for is loaded, else 503 naming them
GET /metrics         Prometheus text (this app's own registry, so several apps can live in one process)
"""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from prometheus_client import CONTENT_TYPE_LATEST

from engine.serve.services import Services


class Readiness(msgspec.Struct, frozen=True):
    status: str
    models: dict[str, int | None]
    missing: list[str]


@get("/health/live", sync_to_thread=False, include_in_schema=True, tags=["operations"])
def live() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "live"}


@get("/health/ready", sync_to_thread=False, tags=["operations"])
def ready(svc: NamedDependency[Services]) -> Response[Readiness]:
    """Ready when every model the server was started for is loaded (503 until then, naming the missing)."""
    host = svc.host
    models = {n: (m.version if (m := host.loaded(n)) else None) for n in host.wanted}
    missing = host.missing()
    body = Readiness("ready" if not missing else "not ready", models, missing)
    return Response(body, status_code=200 if not missing else 503)


@get("/metrics", sync_to_thread=False, tags=["operations"], media_type=CONTENT_TYPE_LATEST)
def metrics_endpoint(svc: NamedDependency[Services]) -> Response[bytes]:
    """Prometheus metrics."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [live, ready, metrics_endpoint]
