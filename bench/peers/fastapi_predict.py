"""The peer: the same /v1/predict/{model} written the usual FastAPI way (pydantic models built from the
manifest, onnxruntime session loaded in the lifespan, the manifest's threshold applied).

    TIDEGATE_BENCH_REGISTRY=DIR uvicorn bench.peers.fastapi_predict:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, create_model

from engine.registry import Registry

_registry = Registry(Path(os.environ.get("TIDEGATE_BENCH_REGISTRY", "registry")))
_man, _path = _registry.artifact("churn")
_fields: dict[str, Any] = {
    spec.column or spec.name: ((str | None) if spec.dtype == "string" else (float | None), ...) for spec in _man.inputs
}
Instance = create_model("Instance", **_fields)  # type: ignore[call-overload]


class PredictRequest(BaseModel):
    instances: list[Instance]  # type: ignore[valid-type]


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    app.state.session = ort.InferenceSession(str(_path), opts, providers=["CPUExecutionProvider"])
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/v1/predict/{model}", response_model=PredictResponse)
def predict(model: str, body: PredictRequest, request: Request) -> PredictResponse:
    if model != _man.name:
        raise HTTPException(status_code=404, detail=f"no model {model!r}")
    feeds = {}
    for spec in _man.inputs:
        col = [getattr(i, spec.column or spec.name) for i in body.instances]
        if spec.dtype == "string":
            feeds[spec.name] = np.array(["" if v is None else v for v in col], dtype=object).reshape(-1, 1)
        else:
            feeds[spec.name] = np.array([np.nan if v is None else v for v in col], dtype=np.float32).reshape(-1, 1)
    probs = np.asarray(request.app.state.session.run(["probabilities"], feeds)[0], dtype=np.float64)
    labels = list(_man.labels)
    pos = labels.index(_man.positive_label)
    chosen = np.where(probs[:, pos] >= _man.threshold, pos, 1 - pos)
    return PredictResponse(
        model=_man.name,
        version=_man.version,
        predictions=[
            Prediction(label=labels[c], probabilities=dict(zip(labels, p, strict=True)))
            for c, p in zip(chosen.tolist(), probs.round(6).tolist(), strict=True)
        ],
    )
