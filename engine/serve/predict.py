"""`POST /v1/predict/{model}`: a batch of instances → one ONNX Runtime call → one prediction per instance.

    {"instances": [{"tenure_months": 3, "contract": "Month-to-month", …}, …]}
 →  {"model": "churn", "version": 2, "predictions": [{"label": "Yes", "probabilities": {"No": 0.3, "Yes": 0.7}}]}

Each instance must carry every input column of the model's manifest (null for an unknown value: NaN for
numbers, "" for strings); extra keys are ignored. Wrong input is a 4xx naming the field, never a 5xx.
Served as a fast route (`engine.serve.fastroute`): the hot path skips Litestar's per-request machinery.
Concurrent requests for the same model version share one ONNX call (`engine.serve.batching`: no timer, a
batch waits only while requests keep arriving; `predict_batch_rows` and `predict_batch_wait` bound it); each
request still gets exactly its own rows' predictions.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import post
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from engine.serve.batching import Coalescer
from engine.serve.fastroute import FastRoute, path_segment
from engine.serve.instances import BadInput
from engine.serve.models import OnnxModel, Prediction
from engine.serve.services import Services

METRIC_ROUTE = "/v1/predict/{model}"  # the path template, as the HTTP metrics label it


class PredictRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the schema documents; each model decodes with its own typed Instance (engine.serve.instances)."""

    instances: list[dict[str, Any]]


class PredictResponse(msgspec.Struct, frozen=True):
    model: str
    version: int
    predictions: list[Prediction]


class ServiceUnavailable(HTTPException):
    status_code = 503


_ENCODER = msgspec.json.Encoder()


async def predict(rest: str, query: bytes, body: bytes, svc: Services) -> bytes:
    """Predict a batch of instances with the live version of the model named in the path."""
    host, metrics, cfg = svc.host, svc.metrics, svc.cfg
    model = path_segment(rest, "model")
    m = host.onnx.get(model)
    if m is None:
        reason = "not_loaded" if model in host.wanted else "unknown_model"
        metrics.errors.labels(METRIC_ROUTE, model if model in host.wanted else "", reason).inc()
        if reason == "not_loaded":
            msg = f"model {model!r} is not loaded yet (see /health/ready)"
            raise ServiceUnavailable(detail=msg)
        served = ", ".join(host.onnx) or "none"
        msg = f"no model {model!r} is served here (served: {served})"
        raise NotFoundException(detail=msg)
    try:
        rows = m.instances.decode(body)  # typed by the model's manifest: a wrong value fails here, in C
        n = len(rows)
        if not 1 <= n <= cfg.max_instances:
            msg = f"send 1 to {cfg.max_instances} instances per request, got {n}"
            raise BadInput(field="instances", message=msg)
    except (BadInput, msgspec.DecodeError, UnicodeDecodeError) as exc:  # the last: bad UTF-8 in a string
        metrics.child(metrics.errors, METRIC_ROUTE, model, "bad_input").inc()
        if isinstance(exc, BadInput):
            extra = {"field": exc.field} if exc.field else None
            raise ValidationException(detail=str(exc), extra=extra) from None
        raise ValidationException(detail=f"malformed JSON body: {exc}") from None
    predictions = await _coalescer(m, svc).submit(rows)
    return _ENCODER.encode(PredictResponse(model=model, version=m.version, predictions=predictions))


def _coalescer(m: OnnxModel, svc: Services) -> Coalescer[Any, Prediction]:
    """The coalescer of the model version `m` (a new one after a swap; the old one finishes its batch)."""
    held = svc.coalescers.get(m.name)
    if held is not None and held[0] is m:
        return held[1]
    metrics, version = svc.metrics, str(m.version)
    inference, predicted = metrics.inference.labels(m.name, version), metrics.predictions.labels(m.name, version)
    rows, requests = metrics.batch_rows.labels(m.name), metrics.batch_requests.labels(m.name)

    def observe(n_rows: int, n_requests: int, seconds: float) -> None:  # once per ONNX call
        inference.observe(seconds)
        predicted.inc(n_rows)
        rows.observe(n_rows)
        requests.observe(n_requests)

    cfg = svc.cfg
    c = Coalescer(
        m.predict_rows, max_rows=cfg.predict_batch_rows, max_wait_iterations=cfg.predict_batch_wait, observe=observe
    )
    svc.coalescers[m.name] = (m, c)
    return c


@post(
    "/v1/predict/{model:str}",
    status_code=200,
    tags=["predictions"],
    summary="Predict",
    operation_id="predict",
    sync_to_thread=False,
)
def predict_doc(model: FromPath[str], data: JSONBody[PredictRequest]) -> PredictResponse:
    """Predict a batch of instances with the live version of `model` (one ONNX call for the batch).

    Every input column of the model's manifest is required in each instance (null for an unknown value);
    extra keys are ignored. 400 names the wrong field; 404 for a model not served here; 503 while it loads.
    """
    raise NotImplementedError  # documentation twin: never routed (see engine.serve.fastroute)


FAST_ROUTES = [FastRoute(mount="/v1/predict", template=METRIC_ROUTE, method="POST", handler=predict, twin=predict_doc)]
