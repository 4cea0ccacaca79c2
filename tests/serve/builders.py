"""A small real registry for the serving tests: a trained churn classifier (ONNX, two versions that differ in
their decision threshold) and a co-occurrence recommender trained on seeded interactions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import onnxruntime as ort
import polars as pl

from engine.registry import Manifest, Registry
from engine.samples.churn import write_churn_csv
from models.recommender import train_recommender
from models.recommender.synthetic import synthetic_log

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
TOKEN = "test-admin-token"


def build_registry(folder: Path) -> Registry:
    """churn v1 (live) and v2 (same graph, threshold 0.9, not live) + recommender v1 (live)."""
    from models.training import TrainConfig, train

    registry = Registry(folder / "registry")
    csv = write_churn_csv(folder / "churn.csv", rows=600, seed=5)
    cfg = TrainConfig(data=str(csv), target="churn", name="churn", models=("lr",), folds=2, report_dir=folder / "r")
    train(cfg, now=NOW, registry=registry)
    man, path = registry.artifact("churn")
    v2 = msgspec.structs.replace(man, threshold=0.9, created_at=NOW + dt.timedelta(minutes=1))
    registry.register(v2, path.read_bytes(), promote=False)
    log = synthetic_log(users=400, items=300, per_user=15, seed=1)
    train_recommender(log, name="recommender", now=NOW, registry=registry, evaluate_first=False)
    return registry


def churn_instances(folder: Path, n: int = 20) -> list[dict[str, Any]]:
    """`n` rows of the churn table as request instances (JSON types; blanks as null)."""
    frame = pl.read_csv(folder / "churn.csv", infer_schema_length=10_000).head(n)
    return frame.drop("churn").to_dicts()


def direct_probabilities(man: Manifest, path: Path, instances: list[dict[str, Any]]) -> np.ndarray:
    """The positive-class probabilities straight from ONNX Runtime, fed as the training code feeds it."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in man.inputs:
        col = [inst.get(spec.column) for inst in instances]
        if spec.dtype == "string":
            feeds[spec.name] = np.array(["" if v is None else v for v in col], dtype=object).reshape(-1, 1)
        else:
            feeds[spec.name] = np.array([np.nan if v is None else v for v in col], dtype=np.float32).reshape(-1, 1)
    probs = sess.run(None, feeds)[1]
    return np.asarray(probs)[:, list(man.labels).index(man.positive_label)]
