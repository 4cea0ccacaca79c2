"""Interactions in, recommendations out.

POST /v1/interactions              {"interactions": [{"user_id", "item_id", "event", "ts", "value"?}, …]}
  each record is validated with the shared `interaction` schema; accepted ones update the real-time
  state at once (the next recommendation reflects them) and go to the spool for the interactions flow
  (DuckDB); rejected ones are explained in the response and spooled for the dead letter.
  200 when at least one record was accepted, 422 when none was.
GET /v1/recommendations/{user_id}?k=10
  the top k unseen items: batch co-occurrence model + the user's latest items; popularity for a user
  with no known history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from engine.schema import INTERACTION
from engine.serve.fastroute import FastRoute, path_segment
from engine.serve.predict import ServiceUnavailable
from engine.serve.services import Services
from engine.serve.spool import SpoolLine
from engine.validation import Problem, validate_record


class InteractionsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    interactions: list[Any]


class RejectedRecord(msgspec.Struct, frozen=True):
    index: int  # position in the request's `interactions`
    reason: str
    message: str


class InteractionsResponse(msgspec.Struct, frozen=True):
    received: int
    accepted: int
    rejected: int
    rejects: list[RejectedRecord]
    spooled: bool  # handed to the interactions flow (a spool is configured)


class RecommendedItem(msgspec.Struct, frozen=True):
    item_id: str
    score: float


class RecommendationsResponse(msgspec.Struct, frozen=True):
    user_id: str
    model: str
    version: int
    source: str  # "model" | "popularity"
    items: list[RecommendedItem]


@post("/v1/interactions", status_code=200, sync_to_thread=False, tags=["recommendations"])
def interactions(data: JSONBody[InteractionsRequest], svc: NamedDependency[Services]) -> Response[InteractionsResponse]:
    """Validate and record a batch of interactions (see the module docstring)."""
    realtime, spool, metrics, cfg = svc.realtime, svc.spool, svc.metrics, svc.cfg
    records = data.interactions
    if not 1 <= len(records) <= cfg.max_interactions:
        msg = f"interactions: send 1 to {cfg.max_interactions} records per request, got {len(records)}"
        raise ValidationException(detail=msg, extra={"field": "interactions"})
    now = dt.datetime.now(dt.UTC)
    request_id = uuid.uuid4().hex[:12]
    lines: list[SpoolLine] = []
    rejects: list[RejectedRecord] = []
    for idx, raw in enumerate(records):
        result = validate_record(INTERACTION, raw)
        position = f"request {request_id} record {idx}"
        if isinstance(result, Problem):
            rejects.append(RejectedRecord(idx, result.reason, result.message))
            raw_text = msgspec.json.encode(raw).decode()
            lines.append(
                SpoolLine(
                    kind="reject",
                    received_at=now,
                    position=position,
                    raw=raw_text,
                    reason=result.reason,
                    message=result.message,
                )
            )
            continue
        realtime.add(result.user_id, result.item_id)  # type: ignore[attr-defined]
        lines.append(SpoolLine(kind="ok", received_at=now, position=position, record=msgspec.structs.asdict(result)))
    if spool is not None:
        spool.append(lines)
    accepted = len(records) - len(rejects)
    metrics.interactions.labels("accepted").inc(accepted)
    metrics.interactions.labels("rejected").inc(len(rejects))
    metrics.realtime_users.set(len(realtime))
    body = InteractionsResponse(len(records), accepted, len(rejects), rejects, spool is not None)
    return Response(body, status_code=200 if accepted else 422)


RECOMMENDATIONS_ROUTE = "/v1/recommendations/{user_id}"
_ENCODER = msgspec.json.Encoder()


async def recommendations(rest: str, query: bytes, body: bytes, svc: Services) -> bytes:
    """The top `k` items for the user named in the path that the user has not seen yet."""
    host, realtime, metrics, cfg = svc.host, svc.realtime, svc.metrics, svc.cfg
    user_id = path_segment(rest, "user id")
    k = _k(query, cfg.max_k)
    model = host.recommender
    if model is None:
        msg = "no recommender is loaded: train one with 'tidegate train-recommender' (see /health/ready)"
        raise ServiceUnavailable(detail=msg)
    if len(user_id) > 128:
        raise ValidationException(detail="user_id: at most 128 characters", extra={"field": "user_id"})
    rec = model.scorer.recommend(user_id, realtime.recent(user_id), k)
    metrics.child(metrics.recommendations, model.name, str(model.version), rec.source).inc()
    return _ENCODER.encode(
        RecommendationsResponse(
            user_id=user_id,
            model=model.name,
            version=model.version,
            source=rec.source,
            items=[RecommendedItem(i, s) for i, s in zip(rec.items, rec.scores, strict=True)],
        )
    )


def _k(query: bytes, max_k: int) -> int:
    """`k` from the query string (default 10); 400 unless an integer in 1..max_k."""
    if not query:
        return 10
    values = [v for name, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if name == "k"]
    if not values:
        return 10
    raw = values[-1]
    k = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= k <= max_k:
        msg = f"k: expected an integer from 1 to {max_k}, got {raw!r}"
        raise ValidationException(detail=msg, extra={"field": "k"})
    return k


@get(
    "/v1/recommendations/{user_id:str}",
    tags=["recommendations"],
    summary="Recommendations",
    operation_id="recommendations",
    sync_to_thread=False,
)
def recommendations_doc(
    user_id: FromPath[str],
    k: Annotated[int, QueryParameter(ge=1, le=1000, description="how many items (<= max_k)")] = 10,
) -> RecommendationsResponse:
    """The top `k` items for `user_id` that the user has not seen yet.

    The batch model's neighbours of the user's history plus the user's latest interactions, scored in one
    vectorised step; the most popular items for a user with no known history (`source: popularity`).
    """
    raise NotImplementedError  # documentation twin: never routed (see engine.serve.fastroute)


ROUTES = [interactions]
FAST_ROUTES = [
    FastRoute(
        mount="/v1/recommendations",
        template=RECOMMENDATIONS_ROUTE,
        method="GET",
        handler=recommendations,
        twin=recommendations_doc,
    )
]
