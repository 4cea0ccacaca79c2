"""`POST /v1/predict/{model}`: a batch of instances → one ONNX Runtime call → one prediction per instance.

    {"instances": [{"tenure_months": 3, "contract": "Month-to-month", …}, …]}
 →  {"model": "churn", "version": 2, "predictions": [{"label": "Yes", "probabilities": {"No": 0.3, "Yes": 0.7}}]}

Each instance must carry every input column of the model's manifest (null for an unknown value: NaN for
numbers, "" for strings); extra keys are ignored. Wrong input is a 4xx naming the field, never a 5xx.
Served as a fast route (`engine.serve.fastroute`): the hot path skips Litestar's per-request machinery.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import post
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from engine.serve.fastroute import FastRoute, decode, path_segment
from engine.serve.models import BadInput, Prediction
from engine.serve.services import Services

METRIC_ROUTE = "/v1/predict/{model}"  # the path template, as the HTTP metrics label it


class PredictRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    instances: list[dict[str, Any]]


class PredictResponse(msgspec.Struct, frozen=True):
    model: str
    version: int
    predictions: list[Prediction]


class ServiceUnavailable(HTTPException):
    status_code = 503


_DECODER = msgspec.json.Decoder(PredictRequest)
_ENCODER = msgspec.json.Encoder()


def predict(rest: str, query: bytes, body: bytes, svc: Services) -> bytes:
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
        data = decode(_DECODER, body)
    except ValidationException:
        metrics.child(metrics.errors, METRIC_ROUTE, model, "bad_input").inc()
        raise
    n = len(data.instances)
    if not 1 <= n <= cfg.max_instances:
        metrics.child(metrics.errors, METRIC_ROUTE, model, "bad_input").inc()
        msg = f"instances: send 1 to {cfg.max_instances} instances per request, got {n}"
        raise ValidationException(detail=msg, extra={"field": "instances"})
    t0 = time.perf_counter()
    try:
        predictions = m.predict(data.instances)
    except BadInput as exc:
        metrics.child(metrics.errors, METRIC_ROUTE, model, "bad_input").inc()
        raise ValidationException(detail=str(exc), extra={"field": exc.field}) from None
    version = str(m.version)
    metrics.child(metrics.inference, model, version).observe(time.perf_counter() - t0)
    metrics.child(metrics.predictions, model, version).inc(n)
    return _ENCODER.encode(PredictResponse(model=model, version=m.version, predictions=predictions))


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
