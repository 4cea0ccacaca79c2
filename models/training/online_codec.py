"""A versioned JSON codec for the online model's state — no pickle in the registry.

    {"format": "tidegate.river-linear", "version": 1, "spec": {...},
     "scaler": {"counts": {...}, "means": {...}, "vars": {...}},
     "linear": [{"label": code | null, "weights": {...}, "intercept": x, "n_iterations": n}, ...],
     "target": {"n": n, "mean": m, "sum_sq": s} | null}

`decode(encode(m))` predicts and keeps learning exactly as `m` does (tested). Only the pipeline shape that
`online.build_online` makes is supported; anything else is refused rather than half-restored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import msgspec
from river import linear_model, stats, utils

from models.training.errors import TrainingError
from models.training.online import OnlineModel, OnlineSpec, build_online

FORMAT = "tidegate.river-linear"
VERSION = 1


class LinearState(msgspec.Struct, frozen=True):
    label: int | None
    weights: dict[str, float]
    intercept: float
    n_iterations: int


class ScalerState(msgspec.Struct, frozen=True):
    counts: dict[str, int]
    means: dict[str, float]
    vars: dict[str, float]


class TargetState(msgspec.Struct, frozen=True):
    n: float
    mean: float
    sum_sq: float  # River's `Var._S`


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    version: int
    spec: OnlineSpec
    linear: list[LinearState]
    scaler: ScalerState | None = None
    target: TargetState | None = None


def encode(model: OnlineModel) -> bytes:
    scaler = None
    if model.scaler is not None:
        s = model.scaler
        scaler = ScalerState(dict(s.counts), dict(s.means), dict(s.vars))
    target = None
    if model.spec.task == "regression":
        var = model.head.var
        target = TargetState(var.mean.n, var.mean._mean, var._S)
        linear = [_linear(None, model.head.regressor)]
    elif model.spec.n_classes == 2:
        linear = [_linear(None, model.head)]
    else:
        linear = [_linear(int(label), lr) for label, lr in model.head.classifiers.items()]
    snap = Snapshot(format=FORMAT, version=VERSION, spec=model.spec, linear=linear, scaler=scaler, target=target)
    return msgspec.json.encode(snap)


def decode(data: bytes) -> OnlineModel:
    try:
        snap = msgspec.json.decode(data, type=Snapshot)
    except msgspec.DecodeError as exc:
        msg = f"not an online-model snapshot: {exc}"
        raise TrainingError(msg) from exc
    if snap.format != FORMAT or snap.version != VERSION:
        msg = f"snapshot format {snap.format}/{snap.version} is not {FORMAT}/{VERSION}: retrain the online model"
        raise TrainingError(msg)
    model = build_online(snap.spec)
    if snap.scaler is not None and model.scaler is not None:
        model.scaler.counts = Counter(snap.scaler.counts)
        model.scaler.means = defaultdict(float, snap.scaler.means)
        model.scaler.vars = defaultdict(float, snap.scaler.vars)
    if snap.spec.task == "regression":
        assert snap.target is not None
        var = stats.Var()
        var.mean = stats.Mean._from_state(snap.target.n, snap.target.mean)
        var._S = snap.target.sum_sq
        model.head.var = var
        _restore(model.head.regressor, snap.linear[0])
    elif snap.spec.n_classes == 2:
        _restore(model.head, snap.linear[0])
    else:
        for state in snap.linear:
            lr = model.head.classifier.clone()
            _restore(lr, state)
            model.head.classifiers[state.label] = lr
    return model


def _linear(label: int | None, lr: Any) -> LinearState:
    if lr.l1:
        msg = "the online codec does not carry L1 state"
        raise TrainingError(msg)
    return LinearState(label, dict(lr.weights), float(lr.intercept), int(lr.optimizer.n_iterations))


def _restore(lr: linear_model.LogisticRegression | linear_model.LinearRegression, state: LinearState) -> None:
    lr._weights = utils.VectorDict(dict(state.weights))
    lr.intercept = state.intercept
    lr.optimizer.n_iterations = state.n_iterations
