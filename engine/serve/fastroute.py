"""Hot routes served ahead of Litestar's per-request machinery: predictions and recommendations.

A regular Litestar handler costs ~80 µs per request on this class of machine (kwargs model, dependency
injection, Request/Response objects; measured in-process with the same model, see issue 5's note), more than
the ONNX call it wraps. `FastApp` serves these routes in front of Litestar's middleware stack and router
(~13 µs less again): the route times itself into the same request metrics and renders its errors the way
Litestar does (`{"status_code", "detail", "extra"}`, JSON). The same routes are also mounted inside Litestar
(`mounted`), which serves what the front does not match (the bare mount path). The route reads the body
itself (size-capped); its handler decodes it with a typed msgspec decoder and encodes the response Struct
once.

Mounts do not appear in the OpenAPI schema, so each fast route names a *documentation twin*: a regular
handler with the same path, signature, docstring and tags that is never routed. `document` builds the twins'
path items in a throw-away app and merges them into the served app's schema.

    FastRoute(mount="/v1/predict", template="/v1/predict/{model}", method="POST", handler=…, twin=…)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
)
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler, asgi
from litestar.types import Receive, Scope, Send

from engine.serve.logging import get_logger
from engine.serve.services import Services

# (the path after the mount, e.g. "/churn"; the raw query string; the body; the services) -> a JSON body for a 200
Handler = Callable[[str, bytes, bytes, Services], Awaitable[bytes]]

_JSON = (b"content-type", b"application/json")


class PayloadTooLarge(ClientException):
    status_code = 413


@dataclass(frozen=True, slots=True)
class FastRoute:
    mount: str  # the path prefix Litestar routes to the handler
    template: str  # the path template the request metrics label it with
    method: str
    handler: Handler
    twin: HTTPRouteHandler  # documents the route in the OpenAPI schema


class FastApp(Litestar):
    """Litestar, with the fast routes served in front of its per-request machinery.

    A request whose path starts with a fast route's mount and a slash goes straight to the route: no
    middleware stack, no router, no exception middleware (~13 µs per request in-process, a tenth of a
    prediction's time in the server). The route times itself into the same request metrics and renders its
    errors as Litestar does (`{"status_code", "detail", "extra"}`). Everything else, the bare mount path
    included, goes through Litestar, where the same routes are mounted too (`mounted`)."""

    _front: tuple[tuple[str, FastRoute], ...] = ()

    def serve_in_front(self, routes: Sequence[FastRoute]) -> None:
        self._front = tuple((r.mount + "/", r) for r in routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix, route in self._front:
                if path.startswith(prefix):
                    await self._serve_fast(route, path[len(prefix) - 1 :], scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    async def _serve_fast(self, route: FastRoute, rest: str, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        svc: Services = self.state.svc
        status, headers = 200, _NO_HEADERS
        try:
            out = await _respond(route, rest, scope, receive, svc)
        except HTTPException as exc:
            status, headers = exc.status_code, exc.headers or _NO_HEADERS
            out = _ERROR.encode(_ErrorBody(exc.status_code, exc.detail, exc.extra))
        except Exception:  # noqa: BLE001 - a bug, not bad input: logged; a 500 with no detail, as Litestar answers
            get_logger().exception("request_failed", extra={"fields": {"route": route.template}})
            status, out = 500, b'{"status_code":500,"detail":"Internal Server Error"}'
        try:
            await _send_json(send, status, out, headers)
        finally:
            svc.metrics.observe_http(route.template, route.method, status, time.perf_counter() - t0)


class _ErrorBody(msgspec.Struct, omit_defaults=True):
    status_code: int
    detail: str
    extra: Any = None


_ERROR = msgspec.json.Encoder()
_NO_HEADERS: dict[str, str] = {}


def mounted(route: FastRoute) -> ASGIRouteHandler:
    """The Litestar ASGI route handler serving `route` (for what `FastApp` does not serve in front)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_template"] = route.template  # type: ignore[typeddict-unknown-key]  # read by the metrics
        svc: Services = scope["litestar_app"].state.svc
        await _send_json(send, 200, await _respond(route, scope["path"], scope, receive, svc), _NO_HEADERS)

    app.__name__ = app.__qualname__ = route.twin.handler_name
    return asgi(route.mount, is_mount=True, copy_scope=False, name=f"{route.twin.handler_name}_fast")(app)


async def _respond(route: FastRoute, rest: str, scope: Scope, receive: Receive, svc: Services) -> bytes:
    """The route's JSON body for a 200; HTTPException for anything else."""
    if scope["method"] != route.method:  # type: ignore[typeddict-item]
        raise MethodNotAllowedException(headers={"allow": route.method})
    body = await read_body(receive, svc.cfg.max_body_bytes) if route.method == "POST" else b""
    return await route.handler(rest, scope["query_string"], body, svc)  # type: ignore[typeddict-item]


async def _send_json(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [_JSON, (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientException(detail="the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                msg = f"request body is larger than {limit} bytes (max_body_bytes)"
                raise PayloadTooLarge(detail=msg)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def path_segment(rest: str, what: str) -> str:
    """The one path segment after the mount (`/churn` → `churn`); 404 for none or several."""
    seg = rest.strip("/")  # Litestar hands a mount the rest of the path with a trailing slash
    if not seg or "/" in seg:
        msg = f"expected one path segment for the {what}, got {rest!r}"
        raise NotFoundException(detail=msg)
    return seg


def document(app: Litestar, routes: Sequence[FastRoute]) -> None:
    """Merge the path items of the routes' documentation twins into `app`'s OpenAPI schema."""
    if app.openapi_config is None or not routes:
        return
    docs = Litestar(route_handlers=[r.twin for r in routes], openapi_config=app.openapi_config, logging_config=None)
    theirs, ours = docs.openapi_schema, app.openapi_schema
    ours.paths = {**(ours.paths or {}), **(theirs.paths or {})}
    if theirs.components.schemas:
        ours.components.schemas = {**theirs.components.schemas, **(ours.components.schemas or {})}
