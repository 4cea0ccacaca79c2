"""Train the recommender on a whole interaction log and register it (kind `arrays`, artifact `model.npz`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.registry import DataInfo, Manifest, Registry, TensorSpec
from engine.serve.recarrays import ARTIFACT, FORMAT, RecArrays
from models.recommender.cooccurrence import FitConfig, fit
from models.recommender.data import InteractionLog
from models.recommender.evaluate import MODEL, EvalReport, evaluate


@dataclass(frozen=True, slots=True)
class TrainedRecommender:
    arrays: RecArrays
    manifest: Manifest | None  # None when no registry was given
    report: EvalReport | None  # None when evaluation was skipped


def train_recommender(
    log: InteractionLog,
    *,
    name: str,
    now: dt.datetime,
    registry: Registry | None,
    cfg: FitConfig | None = None,
    evaluate_first: bool = True,
    promote: bool = True,
    k: int = 10,
) -> TrainedRecommender:
    """Evaluate on a temporal split (metrics for the manifest), then fit on all of `log` and register it."""
    cfg = cfg or FitConfig()
    report = evaluate(log, cfg, k=k) if evaluate_first else None
    arrays = fit(log, cfg)
    if registry is None:
        return TrainedRecommender(arrays, None, report)
    metrics: dict[str, float] = {}
    if report is not None:
        for s in report.scores:
            key = f"{s.protocol}_{'model' if s.name == MODEL else 'popularity'}"
            metrics[f"{key}_recall_at_{k}"] = s.recall
            metrics[f"{key}_ndcg_at_{k}"] = s.ndcg
            metrics[f"{s.protocol}_n"] = float(s.n)
    span = log.time_range()
    manifest = Manifest(
        name=name,
        version=0,
        kind="arrays",
        task="recommendation",
        artifact=ARTIFACT,
        sha256="",
        size_bytes=0,
        created_at=now,
        inputs=(TensorSpec(name="user_id", dtype="string", shape=(), column="user_id"),),
        outputs=(TensorSpec(name="items", dtype="string", shape=(-1,)),),
        family="item-cooccurrence",
        params={"format": FORMAT, "items": arrays.n_items, "users": len(arrays.users), **cfg.params()},
        metrics=metrics,
        data=DataInfo(source=log.source, fingerprint=log.fingerprint(), rows=len(log), train_rows=len(log)),
        notes=(
            f"interactions {span[0].isoformat(timespec='seconds')} .. {span[1].isoformat(timespec='seconds')}"
            if span
            else ""
        ),
    )
    final = registry.register(manifest, arrays.to_bytes(), promote=promote)
    return TrainedRecommender(arrays, final, report)
