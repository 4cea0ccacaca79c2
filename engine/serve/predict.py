"""`POST /v1/predict/{model}`: a batch of instances → one ONNX Runtime call → one prediction per instance.

    {"instances": [{"tenure_months": 3, "contract": "Month-to-month", …}, …]}
 →  {"model": "churn", "version": 2, "predictions": [{"label": "Yes", "probabilities": {"No": 0.3, "Yes": 0.7}}]}

Each instance must carry every input column of the model's manifest (null for an unknown value: NaN for
numbers, "" for strings); extra keys are ignored. Wrong input is a 4xx naming the field, never a 5xx.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from engine.serve.models import BadInput, Prediction
from engine.serve.services import Services

ROUTE = "/v1/predict/{model:str}"
METRIC_ROUTE = "/v1/predict/{model}"  # the path template, as the HTTP metrics label it


class PredictRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    instances: list[dict[str, Any]]


class PredictResponse(msgspec.Struct, frozen=True):
    model: str
    version: int
    predictions: list[Prediction]


class ServiceUnavailable(HTTPException):
    status_code = 503


@post(ROUTE, status_code=200, sync_to_thread=False, tags=["predictions"])
def predict(model: FromPath[str], data: JSONBody[PredictRequest], svc: NamedDependency[Services]) -> PredictResponse:
    """Predict a batch of instances with the live version of `model` (one ONNX call for the batch)."""
    host, metrics, cfg = svc.host, svc.metrics, svc.cfg
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
    n = len(data.instances)
    if not 1 <= n <= cfg.max_instances:
        metrics.errors.labels(METRIC_ROUTE, model, "bad_input").inc()
        msg = f"instances: send 1 to {cfg.max_instances} instances per request, got {n}"
        raise ValidationException(detail=msg, extra={"field": "instances"})
    t0 = time.perf_counter()
    try:
        predictions = m.predict(data.instances)
    except BadInput as exc:
        metrics.errors.labels(METRIC_ROUTE, model, "bad_input").inc()
        raise ValidationException(detail=str(exc), extra={"field": exc.field}) from None
    version = str(m.version)
    metrics.child(metrics.inference, model, version).observe(time.perf_counter() - t0)
    metrics.child(metrics.predictions, model, version).inc(n)
    return PredictResponse(model=model, version=m.version, predictions=predictions)


ROUTES = [predict]
