"""The live dashboard: one HTML page that updates itself over server-sent events.

GET /dashboard          the page (per-device latest window aggregates, recent anomalies)
GET /dashboard/state    the whole board as JSON
GET /dashboard/events   SSE: one `update` event per live message (a JSON array of windows/anomalies)
GET /metrics            Prometheus, GET /health
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.serve.live import LiveBoard, LiveConfig
from engine.serve.page import PAGE


@get("/dashboard", media_type="text/html", sync_to_thread=False)
def page() -> str:
    return PAGE


@get("/dashboard/state", sync_to_thread=False)
def board_state(state: State) -> dict[str, Any]:
    return state.board.state()  # type: ignore[no-any-return]


@get("/dashboard/events")
async def events(state: State) -> ServerSentEvent:
    board: LiveBoard = state.board
    keepalive: float = state.keepalive_s

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        q = board.listen()
        try:
            yield ServerSentEventMessage(event="hello", data=msgspec.json.encode({"updates": board.updates}).decode())
            while True:
                try:
                    items = await asyncio.wait_for(q.get(), keepalive)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keepalive")
                    continue
                yield ServerSentEventMessage(event="update", data=msgspec.json.encode(items).decode())
        finally:
            board.unlisten(q)

    return ServerSentEvent(stream())


@get("/metrics", sync_to_thread=False)
def prometheus() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@get("/health", sync_to_thread=False)
def health(state: State) -> dict[str, Any]:
    return {"status": "ok", "mqtt_connected": state.board.connected}


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]
DASHBOARD_ROUTES = (page, board_state, events)


def dashboard_mount(cfg: LiveConfig, *, keepalive_s: float = 15.0) -> tuple[Sequence[Any], Lifespan]:
    """The dashboard's routes and the lifespan that feeds them, to mount in any app (`tidegate serve
    --dashboard-mqtt URL` mounts them beside the predictions API; `tidegate dashboard` serves them alone)."""
    board = LiveBoard(cfg)

    @asynccontextmanager
    async def feed(app: Litestar) -> AsyncIterator[None]:
        app.state.board = board
        app.state.keepalive_s = keepalive_s
        board.start()
        try:
            yield
        finally:
            board.stop()

    return DASHBOARD_ROUTES, feed


def create_app(cfg: LiveConfig, *, keepalive_s: float = 15.0) -> Litestar:
    """The dashboard alone, with its own /metrics and /health; the MQTT feed starts and stops with the app."""
    routes, feed = dashboard_mount(cfg, keepalive_s=keepalive_s)
    return Litestar(route_handlers=[*routes, prometheus, health], lifespan=[feed])
