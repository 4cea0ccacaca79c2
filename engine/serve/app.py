"""The serving app: `create_app(cfg)` composes predictions, interactions/recommendations, admin and ops.

Everything a request needs is made in the lifespan and handed to handlers by dependency injection (no
module globals): the model host (registry → live ONNX sessions and recommender), the real-time state,
the spool, the metrics and the config. `extra_handlers` mounts more routes on the same app (e.g. the
dashboard's), `extra_lifespan` more start/stop hooks.

    create_app(ServeConfig(registry="registry"))                 # an ASGI app
    app_from_env()                                                # the same, config from $TIDEGATE_SERVE_CONFIG
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from engine.registry import Registry
from engine.serve import admin, interactions, ops, predict
from engine.serve.config import ServeConfig
from engine.serve.fastroute import FastApp, document, mounted
from engine.serve.logging import configure_logging, emit
from engine.serve.meters import ServeMetrics, timing_middleware
from engine.serve.models import ModelHost
from engine.serve.recommend import RealtimeState
from engine.serve.services import Services
from engine.serve.spool import Spool

CONFIG_ENV = "TIDEGATE_SERVE_CONFIG"  # the JSON ServeConfig handed from `tidegate serve` to its worker process


def _services(state: State) -> Services:
    return state.svc  # type: ignore[no-any-return]


def create_app(
    cfg: ServeConfig,
    *,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    extra_lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
) -> Litestar:
    """The server app for `cfg` (models load when the app starts, not here)."""
    metrics = ServeMetrics()
    log = configure_logging(cfg.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        host = ModelHost(
            Registry(Path(cfg.registry)),
            onnx_names=cfg.models,
            recommender=cfg.recommender,
            threads=cfg.ort_threads,
            log=log,
            on_swap=metrics.on_swap,
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, host.load_all)
        realtime = RealtimeState(cfg.recent_items, cfg.max_users)
        if cfg.state_file and Path(cfg.state_file).is_file():
            try:
                realtime.restore(RealtimeState.decode(Path(cfg.state_file).read_bytes()))
            except (OSError, ValueError) as exc:
                emit(log, "state_restore_failed", logging.ERROR, path=cfg.state_file, error=str(exc))
        spool = Spool(Path(cfg.spool_dir)) if cfg.spool_dir else None
        app.state.svc = Services(cfg=cfg, metrics=metrics, host=host, realtime=realtime, spool=spool)
        watcher = asyncio.create_task(host.watch(cfg.watch_interval_s)) if cfg.watch_interval_s > 0 else None
        emit(
            log,
            "server_started",
            registry=cfg.registry,
            models={n: (m.version if (m := host.loaded(n)) else None) for n in host.wanted},
            realtime_users=len(realtime),
            spool=cfg.spool_dir or None,
            admin="enabled" if cfg.admin_enabled else "disabled",
        )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if spool is not None:
                spool.close()
            emit(log, "server_stopped")

    from engine.serve.classify import ClassifyConfig, classify_router

    extra_handlers = [*extra_handlers, classify_router(ClassifyConfig(registry_root=Path(cfg.registry)))]
    if cfg.dashboard_mqtt:
        from engine.serve.dashboard import dashboard_mount
        from engine.serve.live import LiveConfig

        routes, feed = dashboard_mount(LiveConfig(mqtt_url=cfg.dashboard_mqtt, live_topic=cfg.live_topic))
        extra_handlers, extra_lifespan = [*extra_handlers, *routes], [*extra_lifespan, feed]
    fast = [*predict.FAST_ROUTES, *interactions.FAST_ROUTES]
    app = FastApp(
        route_handlers=[
            *(mounted(r) for r in fast),
            *interactions.ROUTES,
            *admin.ROUTES,
            *ops.ROUTES,
            *extra_handlers,
        ],
        lifespan=[lifespan, *extra_lifespan],
        dependencies={"svc": Provide(_services, sync_to_thread=False)},
        state=State({"cfg": cfg, "metrics": metrics}),
        middleware=[timing_middleware(metrics)],
        exception_handlers={UnicodeDecodeError: _not_utf8},
        openapi_config=OpenAPIConfig(
            title="tidegate serving API",
            version="1",
            path="/schema",
            description="Predictions from the registry's ONNX models, interactions and real-time recommendations.",
            use_handler_docstrings=True,
        ),
        logging_config=None,  # our JSON logger (engine.serve.logging); leave the process's logging alone
        debug=False,
    )
    app.serve_in_front(fast)
    document(app, fast)
    return app


def _not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    """A JSON body holding a string that is not UTF-8 (msgspec raises this, not a DecodeError): bad input."""
    return Response({"status_code": 400, "detail": f"malformed JSON body: {exc}"}, status_code=400)


def app_from_env() -> Litestar:
    """The app for the config that `tidegate serve` put in $TIDEGATE_SERVE_CONFIG (ASGI server factory)."""
    return create_app(ServeConfig.from_json(os.environ[CONFIG_ENV]), extra_lifespan=[_freeze_gc])


@asynccontextmanager
async def _freeze_gc(app: Litestar) -> AsyncIterator[None]:
    """Once the app has started, move every object it holds (modules, models) out of the garbage collector's
    sight: a full collection then scans only what requests create, not the ~50 000 objects of the imports
    (~6-12 ms each time, a pause every in-flight request would wait for)."""
    gc.collect()
    gc.freeze()
    yield
