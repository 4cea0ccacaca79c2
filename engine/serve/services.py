"""What request handlers are given: one object made in the app's lifespan and injected as `svc`.

One dependency rather than five: Litestar resolves several dependencies of a handler in an anyio task group
(four tasks per request, measured at ~0.4 ms on this machine); a single one is a plain call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.serve.batching import Coalescer
from engine.serve.config import ServeConfig
from engine.serve.meters import ServeMetrics
from engine.serve.models import ModelHost
from engine.serve.recommend import RealtimeState
from engine.serve.spool import Spool


@dataclass(frozen=True, slots=True)
class Services:
    cfg: ServeConfig
    metrics: ServeMetrics
    host: ModelHost
    realtime: RealtimeState
    spool: Spool | None
    coalescers: dict[str, tuple[Any, Coalescer[Any, Any]]] = field(default_factory=dict)  # model -> (version, its)
