"""Benchmark: batch training wall time, and ONNX vs scikit-learn inference latency of the exported pipeline.

Workload: the seeded churn table with extra usage columns, 10 000 rows × 20 feature columns (quick: 2 000
rows, 3 folds). Training: `models.training.train` with lr, rf and gb, 5-fold stratified CV, refit, ONNX
export and parity check (one process, one job). Latency: each family's fitted pipeline, exported, scored on
single rows and 256-row batches of held-out data — scikit-learn on a polars frame slice, ONNX Runtime (one
thread) on prepared input arrays; medians and p99 in µs, judged as the ratio sklearn/onnx measured in the
same run. ROC-AUC of each exported model is reported beside its speed.

    python -m bench.train_models [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Quick-mode floors (sklearn median / onnx median), set well under what this machine measured (see issue note).
SINGLE_ROW_FLOOR = 5.0
BATCH_FLOOR = 1.0
FAMILIES = ("lr", "rf", "gb")


def _workload(rows: int, folder: Path) -> Path:
    from engine.samples.churn import write_churn_csv

    return write_churn_csv(folder / f"churn_{rows}.csv", rows, seed=0, extra_numeric=8)


def _p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


def training(csv: Path, folds: int) -> tuple[dict[str, Any], Any]:
    from models.training import TrainConfig, train

    cfg = TrainConfig(
        data=str(csv), target="churn", name="bench", models=FAMILIES, folds=folds, report_dir=csv.parent / "r"
    )
    t0 = time.perf_counter()
    result = train(cfg, now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), registry=None)
    seconds = time.perf_counter() - t0
    rep = result.report
    row = {
        "bench": "train_models",
        "name": f"train {rep.data.used_rows:,} rows × {sum(c.kind != 'dropped' for c in rep.data.columns)} features, "
        f"{len(rep.candidates)} families × {folds} folds",
        "metric": "wall_s",
        "value": seconds,
        "note": f"cv {rep.timings['cv']:.2f}s, export+parity {rep.timings.get('export', 0):.2f}s; "
        f"chosen {rep.chosen}, CV roc_auc {rep.candidate(rep.chosen).mean['roc_auc']:.4f}",
    }
    return row, result


def latency(result: Any, calls: int, batches: int) -> list[dict[str, Any]]:
    """sklearn vs ONNX Runtime per family, on the run's own train/test split."""
    return [row for key in FAMILIES for row in _family_latency(key, result, calls, batches)]


def _family_latency(key: str, result: Any, calls: int, batches: int) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score

    from models.training.config import PcaOption
    from models.training.export import check_parity, convert, feeds, session
    from models.training.families import FAMILIES as SPECS
    from models.training.features import build_pipeline

    plans, X_te = result.plans, result.X_test
    pipe = build_pipeline(plans, SPECS[key], "classification", pca=PcaOption(), seed=0)
    pipe.fit(result.X_train, result.y_train)
    onnx = convert(pipe, plans)
    parity = check_parity(onnx, pipe, X_te, plans)
    sess = session(onnx)
    all_feeds = feeds(sess, X_te, plans)
    auc = roc_auc_score(result.y_test, sess.run(None, all_feeds)[1][:, 1])
    idx = np.random.default_rng(0).integers(0, len(X_te), calls)
    singles = [({k: v[i : i + 1] for k, v in all_feeds.items()}, X_te[int(i) : int(i) + 1]) for i in idx]
    batch = ({k: v[:256] for k, v in all_feeds.items()}, X_te[:256])
    timings = {
        "1 row": (
            _each(lambda f: sess.run(None, f), [f for f, _ in singles]),
            _each(pipe.predict_proba, [x for _, x in singles]),
        ),
        "256 rows": (
            _each(lambda f: sess.run(None, f), [batch[0]] * batches),
            _each(pipe.predict_proba, [batch[1]] * batches),
        ),
    }
    rows = []
    for label, (o, s) in timings.items():
        om, sm = statistics.median(o), statistics.median(s)
        rows.append(
            {
                "bench": "train_models",
                "name": f"{key} {label}: sklearn/onnx latency",
                "metric": "ratio_single" if label == "1 row" else "ratio_batch",
                "value": sm / om,
                "note": f"onnx median {om:.1f}µs p99 {_p99(o):.1f}µs; sklearn median {sm:.1f}µs "
                f"p99 {_p99(s):.1f}µs; roc_auc {auc:.4f}; parity {parity.max_abs_diff:.1e}",
            }
        )
    return rows


def _each(fn: Callable[[Any], object], inputs: list[Any]) -> list[float]:
    """µs per call of fn(x) for each x (after one warm-up call)."""
    fn(inputs[0])
    out = []
    for x in inputs:
        t0 = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def run(quick: bool) -> list[dict[str, Any]]:
    rows, folds, calls, batches = (2_000, 3, 200, 20) if quick else (10_000, 5, 2_000, 200)
    with tempfile.TemporaryDirectory() as tmp:
        csv = _workload(rows, Path(tmp))
        train_row, result = training(csv, folds)
        return [train_row, *latency(result, calls, batches)]


def check(results: list[dict[str, Any]]) -> list[str]:
    """Failure messages for ratios under their floors (ratios only; never an absolute time)."""
    floors = {"ratio_single": SINGLE_ROW_FLOOR, "ratio_batch": BATCH_FLOOR}
    return [
        f"train_models: {r['name']} is {r['value']:.2f}x, under the floor {floors[r['metric']]}x"
        for r in results
        if r["metric"] in floors and r["value"] < floors[r["metric"]]
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    results = run(args.quick)
    for r in results:
        unit = "s" if r["metric"] == "wall_s" else "x"
        print(f"{r['name']:60s} {r['value']:10.2f}{unit}  {r['note']}")
    for msg in check(results):
        print("FAIL", msg)


if __name__ == "__main__":
    main()
