"""Hot routes as raw ASGI mounts inside the Litestar app: predictions and recommendations.

A regular Litestar handler costs ~80 µs per request on this class of machine (kwargs model, dependency
injection, Request/Response objects; measured in-process with the same model, see issue 5's note), more than
the ONNX call it wraps; an ASGI mount costs ~8 µs. A mount keeps what the rest of the app relies on:
Litestar's routing, the app's middleware (request metrics), and its error rendering: an `HTTPException`
raised before the response starts becomes the same JSON 4xx as on every other route. The route reads the
body itself (size-capped); its handler decodes it with a typed msgspec decoder and encodes the response
Struct once.

Mounts do not appear in the OpenAPI schema, so each fast route names a *documentation twin*: a regular
handler with the same path, signature, docstring and tags that is never routed. `document` builds the twins'
path items in a throw-away app and merges them into the served app's schema.

    FastRoute(mount="/v1/predict", template="/v1/predict/{model}", method="POST", handler=…, twin=…)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from litestar import Litestar
from litestar.exceptions import (
    ClientException,
    MethodNotAllowedException,
    NotFoundException,
)
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler, asgi
from litestar.types import Receive, Scope, Send

from engine.serve.services import Services

# (the path after the mount, e.g. "/churn"; the raw query string; the body; the services) -> a JSON body for a 200
Handler = Callable[[str, bytes, bytes, Services], bytes]

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


def mounted(route: FastRoute) -> ASGIRouteHandler:
    """The Litestar ASGI route handler serving `route`."""
    allow = {"allow": route.method}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_template"] = route.template  # type: ignore[typeddict-unknown-key]  # read by the metrics
        if scope["method"] != route.method:  # type: ignore[typeddict-item]
            raise MethodNotAllowedException(headers=allow)
        svc: Services = scope["litestar_app"].state.svc
        body = await read_body(receive, svc.cfg.max_body_bytes) if route.method == "POST" else b""
        out = route.handler(scope["path"], scope["query_string"], body, svc)  # type: ignore[typeddict-item]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out, "more_body": False})

    app.__name__ = app.__qualname__ = route.twin.handler_name
    return asgi(route.mount, is_mount=True, copy_scope=False, name=f"{route.twin.handler_name}_fast")(app)


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
