"""`train(config)`: load → infer columns → split → CV every family (tuned) → pick → threshold → refit →
export + parity → online counterpart → registry → report. Same config and seed → same result.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from engine.registry import Registry
from engine.registry.store import check_name
from models.training import plots
from models.training.columns import ColumnPlan, features, infer_columns, prepare_features
from models.training.config import TrainConfig
from models.training.errors import DataError
from models.training.export import TARGET_OPSET, check_parity, convert, io_specs, probe_family
from models.training.families import FAMILIES
from models.training.features import build_pipeline
from models.training.load import load_table
from models.training.metrics import (
    better,
    classification_metrics,
    confusion,
    is_imbalanced,
    mean_std,
    predict_labels,
    primary_metric,
    regression_metrics,
    scorer,
)
from models.training.online import build_online, progressive_validation, spec_for
from models.training.online_codec import encode
from models.training.publish import publish
from models.training.report import (
    Candidate,
    DataSummary,
    ExportInfo,
    Skipped,
    Split,
    TestResult,
    TrainReport,
)
from models.training.target import encode_target
from models.training.threshold import tune_threshold
from models.training.tuning import plain, search
from models.training.validation import Folds, cross_validate, fold_balance, holdout_split, make_folds

_LIBS = ("scikit-learn", "skl2onnx", "onnxruntime", "river", "numpy", "polars")


@dataclass
class TrainResult:
    report: TrainReport
    pipeline: Pipeline
    plans: list[ColumnPlan]
    X_train: pl.DataFrame
    y_train: np.ndarray
    X_test: pl.DataFrame
    y_test: np.ndarray
    onnx: bytes | None = None
    online_snapshot: bytes | None = None
    paths: dict[str, Path] = field(default_factory=dict)


def train(
    cfg: TrainConfig,
    *,
    now: dt.datetime,
    registry: Registry | None = None,
    promote: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    say = log or (lambda _: None)
    check_name(cfg.name)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    table = load_table(cfg.data)
    y, keep, target = encode_target(table.frame, cfg.target, cfg.task, cfg.positive, decimal_comma=table.decimal_comma)
    frame = table.frame.filter(pl.Series(keep))
    plans = infer_columns(frame, cfg.target, decimal_comma=table.decimal_comma, max_levels=cfg.max_levels)
    if not features(plans):
        why = "; ".join(f"{p.name}: {p.reason}" for p in plans) or "the target is the only column"
        msg = f"no usable feature column ({why}): add feature columns or check --target"
        raise DataError(msg)
    X = prepare_features(frame, plans, decimal_comma=table.decimal_comma)
    timings["load"] = time.perf_counter() - t0
    task, labels = target.task, target.labels
    k = len(labels)
    say(f"loaded {table.frame.height:,} rows; {len(features(plans))} features; task {task}")

    tr, te = holdout_split(y, task, cfg.test_size, cfg.seed, labels)
    X_tr, y_tr, X_te, y_te = X[tr], y[tr], X[te], y[te]
    folds = make_folds(y_tr, task, cfg.folds, cfg.seed, labels)
    balance = fold_balance(y_tr, folds, k) if task == "classification" else []
    imbalanced = is_imbalanced(target.class_counts)
    primary = primary_metric(task, target.class_counts)

    t1 = time.perf_counter()
    ctx = _Context(cfg, plans, task, k, X_tr, y_tr, folds, primary, imbalanced)
    candidates, skipped, pipes, oofs = [], [], {}, {}
    for key in cfg.models:
        reason = probe_family(FAMILIES[key], task) if cfg.export else None
        if reason:
            skipped.append(Skipped(family=key, reason=reason))
            say(f"{key}: skipped ({reason})")
            continue
        candidate, pipes[key], oofs[key] = _evaluate(key, ctx)
        candidates.append(candidate)
        say(f"{key}: CV {primary} {candidate.mean[primary]:.4f} ± {candidate.std[primary]:.4f}")
    if not candidates:
        msg = "every model family was skipped (" + "; ".join(f"{s.family}: {s.reason}" for s in skipped) + ")"
        raise DataError(msg + ": use --models lr,rf,gb")
    best = candidates[0]
    for c in candidates[1:]:
        if better(primary, c.mean[primary], best.mean[primary]):
            best = c
    timings["cv"] = time.perf_counter() - t1

    threshold = tune_threshold(y_tr, oofs[best.family][:, 1]) if task == "classification" and k == 2 else None
    t2 = time.perf_counter()
    model = clone(pipes[best.family]).fit(X_tr, y_tr)
    timings["refit"] = time.perf_counter() - t2
    test, test_pred = _test_result(model, X_te, y_te, task, k, threshold.value if threshold else None)

    onnx, export = None, None
    if cfg.export:
        t3 = time.perf_counter()
        onnx = convert(model, plans)
        tolerance = 1e-4 * (max(1.0, float(np.std(y_tr))) if task == "regression" else 1.0)
        parity = check_parity(onnx, model, X_te, plans, tolerance=tolerance)
        inputs, outputs = io_specs(onnx, plans)
        export = ExportInfo(parity=parity, inputs=inputs, outputs=outputs, size_bytes=len(onnx), opset=TARGET_OPSET)
        timings["export"] = time.perf_counter() - t3
        say(f"onnx parity: max |Δ| {parity.max_abs_diff:.2e} on {parity.rows} test rows")

    online, snapshot = None, None
    if cfg.online:
        t4 = time.perf_counter()
        online_model = build_online(spec_for(plans, task, k))
        online = progressive_validation(online_model, X, y)  # every row, in arrival order
        snapshot = encode(online_model)
        timings["online"] = time.perf_counter() - t4
    timings["total"] = time.perf_counter() - t0

    report = TrainReport(
        name=cfg.name,
        created_at=now,
        seed=cfg.seed,
        options=_options(cfg),
        data=DataSummary(
            source=cfg.data,
            format=table.format,
            rows=table.frame.height,
            used_rows=frame.height,
            skipped_rows=table.skipped_rows,
            fingerprint=table.fingerprint,
            columns=plans,
        ),
        target=target,
        split=Split(
            train_rows=len(tr),
            test_rows=len(te),
            test_size=cfg.test_size,
            folds=cfg.folds,
            stratified=task == "classification",
            cv="StratifiedKFold" if task == "classification" else "KFold",
        ),
        fold_balance=balance,
        primary_metric=primary,
        candidates=candidates,
        skipped=skipped,
        chosen=best.family,
        test=test,
        threshold=threshold,
        export=export,
        online=online,
        timings=timings,
        notes=_notes(cfg, table.skipped_rows, imbalanced, plans),
        versions={lib: pkg_version(lib) for lib in _LIBS},
    )
    result = TrainResult(report, model, plans, X_tr, y_tr, X_te, y_te, onnx, snapshot)
    figures = _figures(report, candidates, y_te, test_pred, primary)
    result.paths = publish(
        result.report, figures, onnx, snapshot, registry=registry, promote=promote, report_dir=cfg.report_dir
    )
    return result


@dataclass(frozen=True)
class _Context:
    """What every candidate family is evaluated against (same split, same folds)."""

    cfg: TrainConfig
    plans: list[ColumnPlan]
    task: str
    n_classes: int
    X: pl.DataFrame
    y: np.ndarray
    folds: Folds
    primary: str
    imbalanced: bool


def _evaluate(key: str, ctx: _Context) -> tuple[Candidate, Pipeline, np.ndarray]:
    """Tune (if asked) and cross-validate one family: its candidate record, pipeline and out-of-fold predictions."""
    cfg, family = ctx.cfg, FAMILIES[key]
    pipe = build_pipeline(ctx.plans, family, ctx.task, pca=cfg.pca, seed=cfg.seed, imbalanced=ctx.imbalanced)
    summary = None
    if cfg.tune:
        score = scorer(ctx.primary, ctx.n_classes)
        summary = search(
            pipe,
            family,
            ctx.task,
            ctx.X,
            ctx.y,
            ctx.folds,
            n_iter=cfg.tune,
            scoring=score,
            seed=cfg.seed,
            jobs=cfg.jobs,
        )
        pipe = build_pipeline(
            ctx.plans,
            family,
            ctx.task,
            pca=cfg.pca,
            seed=cfg.seed,
            imbalanced=ctx.imbalanced,
            params=summary.best_params,
        )
    cv = cross_validate(pipe, ctx.X, ctx.y, ctx.folds, ctx.task, ctx.n_classes, cfg.jobs)
    mean, std = mean_std(cv.fold_metrics)
    est = pipe.steps[-1][1]
    candidate = Candidate(
        family=key,
        estimator=type(est).__name__,
        params={p: plain(v) for p, v in sorted(est.get_params().items())},
        fold_metrics=cv.fold_metrics,
        mean=mean,
        std=std,
        fit_seconds=float(sum(cv.fit_seconds)),
        search=summary,
    )
    return candidate, pipe, cv.oof


def _test_result(
    model: Pipeline, X: pl.DataFrame, y: np.ndarray, task: str, k: int, threshold: float | None
) -> tuple[TestResult, np.ndarray]:
    if task == "regression":
        pred = model.predict(X)
        return TestResult(rows=len(y), metrics=regression_metrics(y, pred)), pred
    proba = model.predict_proba(X)
    at = classification_metrics(y, proba, threshold) if threshold is not None else None
    cm = confusion(y, predict_labels(proba, threshold), k)
    return TestResult(
        rows=len(y), metrics=classification_metrics(y, proba), metrics_at_threshold=at, confusion=cm
    ), proba


def _figures(
    report: TrainReport, candidates: list[Candidate], y: np.ndarray, pred: np.ndarray, primary: str
) -> dict[str, str]:
    figs = {"folds": plots.fold_bars({c.family: c.fold_metrics for c in candidates}, primary)}
    if report.target.task == "regression":
        figs["residuals"] = plots.residuals(y, pred)
        return figs
    labels = report.target.labels
    figs["roc_pr"] = plots.roc_pr(y, pred, labels)
    assert report.test.confusion is not None
    at = f"threshold {report.threshold.value:.3f}" if report.threshold else "argmax"
    figs["confusion"] = plots.confusion(report.test.confusion, labels, f"Confusion (test split, {at})")
    figs["calibration"] = plots.calibration(y, pred)
    return figs


def _options(cfg: TrainConfig) -> dict[str, str | int | float | bool | None]:
    return {
        "task": cfg.task,
        "models": ",".join(cfg.models),
        "folds": cfg.folds,
        "tune": cfg.tune,
        "pca": cfg.pca.label,
        "test_size": cfg.test_size,
        "seed": cfg.seed,
        "positive": cfg.positive,
        "online": cfg.online,
        "max_levels": cfg.max_levels,
    }


def _notes(cfg: TrainConfig, skipped_rows: int, imbalanced: bool, plans: list[ColumnPlan]) -> list[str]:
    notes = []
    if skipped_rows:
        notes.append(f"{skipped_rows} records could not be parsed and were skipped")
    if imbalanced:
        notes.append("imbalanced target (minority < 20 %): ranked by PR-AUC; lr/rf start with balanced class weights")
    notes += [f"{p.name}: {p.reason}" for p in plans if p.kind != "dropped" and p.reason]
    if cfg.tune:
        notes.append(f"randomized search: {cfg.tune} candidates per family, scored on the CV folds")
    return notes
