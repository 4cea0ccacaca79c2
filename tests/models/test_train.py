"""`train()` end to end on real files and real public data: report, stratification, parity, determinism,
registry entries, data sources, and the bad-input errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import polars as pl
import pytest

from engine.registry import Registry
from models.training import PcaOption, TrainConfig, train
from models.training.datasets import public_table
from models.training.errors import DataError, TrainUsageError
from models.training.export import check_parity, session
from models.training.report import read_json, summary_table
from tests.models.conftest import NOW


def _cfg(data: Path | str, tmp_path: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {"target": "churn", "name": "churn", "folds": 3, "report_dir": tmp_path / "report"}
    if isinstance(kw.get("pca"), str):
        kw["pca"] = PcaOption.parse(str(kw["pca"]))
    return TrainConfig(data=str(data), **(base | kw))  # type: ignore[arg-type]


def test_churn_end_to_end_with_registry_and_online(churn_csv: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    result = train(_cfg(churn_csv, tmp_path, online=True, models=("lr", "gb", "hgb")), now=NOW, registry=reg)
    rep = result.report
    dropped = {c.name: c.reason for c in rep.data.columns if c.kind == "dropped"}
    assert set(dropped) == {"customer_id", "signup_date"}
    assert rep.target.labels == ("No", "Yes") and rep.target.positive_label == "Yes"
    assert [c.family for c in rep.candidates] == ["lr", "gb"]
    assert rep.skipped[0].family == "hgb" and "HistGradientBoosting" in rep.skipped[0].reason
    assert all(
        len(c.fold_metrics) == 3 and set(c.mean) >= {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"}
        for c in rep.candidates
    )
    best = max(rep.candidates, key=lambda c: c.mean["roc_auc"])
    assert rep.chosen == best.family and rep.primary_metric == "roc_auc"
    assert all(b.within_1pp and b.deviation_pp <= 1.0 for b in rep.fold_balance)
    assert rep.test.rows == 180 and rep.test.metrics["roc_auc"] > 0.75
    assert rep.threshold is not None and 0 < rep.threshold.value < 1
    assert sum(map(sum, rep.test.confusion or [])) == 180
    assert rep.export is not None and rep.export.parity.max_abs_diff <= 1e-4
    assert rep.online is not None and rep.online.rows == 900 and rep.online.metrics["roc_auc"] > 0.7
    # the registry holds both, live, with manifests that match the artifacts
    assert rep.registry is not None and rep.registry.live
    man, path = reg.artifact("churn")
    assert man.version == 1 and man.kind == "onnx" and man.threshold == rep.threshold.value
    assert man.labels == ("No", "Yes") and man.data is not None and man.data.rows == 900
    assert [i.column for i in man.inputs] == [c.name for c in rep.data.columns if c.kind != "dropped"]
    sess = session(path.read_bytes())
    assert [i.name for i in sess.get_inputs()] == [i.name for i in man.inputs]
    online, online_path = reg.artifact("churn-online")
    assert online.kind == "river" and online_path.read_bytes() == result.online_snapshot
    # the exported file is the pipeline: parity holds when re-read from the registry
    assert check_parity(path.read_bytes(), result.pipeline, result.X_test, result.plans).max_abs_diff <= 1e-4
    # report files
    assert read_json(result.paths["json"]).chosen == rep.chosen
    html = result.paths["html"].read_text()
    assert html.count("<svg") >= 4 and "Stratified" in html and "customer_id" in html
    assert "chosen" in summary_table(rep)


def test_same_seed_same_result_other_seed_other_folds(churn_csv: Path, tmp_path: Path) -> None:
    runs = [
        train(_cfg(churn_csv, tmp_path / str(i), models=("lr", "rf"), tune=2, seed=s, export=False), now=NOW)
        for i, s in enumerate((7, 7, 8))
    ]
    a, b, c = (r.report for r in runs)
    assert msgspec.json.encode(a.candidates[0].fold_metrics) == msgspec.json.encode(b.candidates[0].fold_metrics)
    assert [x.params for x in a.candidates] == [x.params for x in b.candidates]
    assert a.candidates[1].search is not None and a.candidates[1].search.candidates == 2
    assert a.test.metrics == b.test.metrics
    assert a.candidates[0].fold_metrics != c.candidates[0].fold_metrics


def test_breast_cancer_is_learned_and_exported(tmp_path: Path) -> None:
    data = tmp_path / "bc.parquet"
    public_table("breast_cancer").write_parquet(data)
    rep = train(_cfg(data, tmp_path, target="diagnosis", name="bc", models=("lr", "rf")), now=NOW).report
    assert rep.target.positive_label == "malignant"
    assert rep.candidate(rep.chosen).mean["roc_auc"] > 0.97 and rep.test.metrics["roc_auc"] > 0.95
    assert all(b.within_1pp for b in rep.fold_balance)
    assert rep.export is not None and rep.export.parity.max_abs_diff <= 1e-4


def test_diabetes_regression(tmp_path: Path) -> None:
    data = tmp_path / "diabetes.csv"
    public_table("diabetes").write_csv(data)
    rep = train(_cfg(data, tmp_path, target="progression", name="diabetes", online=True), now=NOW).report
    assert rep.target.task == "regression" and rep.split.cv == "KFold" and not rep.fold_balance
    assert rep.primary_metric == "rmse" and rep.chosen == min(rep.candidates, key=lambda c: c.mean["rmse"]).family
    assert rep.candidate(rep.chosen).mean["r2"] > 0.35
    assert rep.export is not None and rep.export.parity.max_abs_diff <= rep.export.parity.tolerance
    assert rep.online is not None and rep.online.metrics["r2"] > 0.2


def test_imbalanced_multiclass_pca_and_other_sources(tmp_path: Path) -> None:
    frame = public_table("wine")
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.register("w", frame.to_arrow())
    con.execute("CREATE TABLE wine AS SELECT * FROM w")
    con.close()
    rep = train(
        _cfg(f"duckdb:{db}:wine", tmp_path, target="cultivar", name="wine", models=("lr",), pca="auto"), now=NOW
    ).report
    assert rep.target.labels == ("class_0", "class_1", "class_2") and rep.threshold is None
    assert rep.test.metrics["accuracy"] > 0.85 and rep.export is not None
    q = f"duckdb:{db}:SELECT * FROM wine WHERE cultivar <> 'class_2'"
    rep = train(_cfg(q, tmp_path, target="cultivar", name="wine2", models=("lr",)), now=NOW).report
    assert rep.target.labels == ("class_1", "class_0") and rep.target.positive_label == "class_0"  # the rarer one
    # gzip'd NDJSON with a rare positive class: ranked by PR-AUC, balanced class weights
    rng = np.random.default_rng(0)
    x = rng.normal(size=1500)
    rows = pl.DataFrame(
        {"x": x, "z": rng.normal(size=1500), "fraud": np.where(x + rng.normal(0, 0.5, 1500) > 2.0, "yes", "no")}
    )
    path = tmp_path / "f.ndjson.gz"
    path.write_bytes(gzip.compress(rows.write_ndjson().encode()))
    rep = train(_cfg(path, tmp_path, target="fraud", name="fraud", models=("lr",)), now=NOW).report
    assert rep.primary_metric == "pr_auc" and rep.candidates[0].params["class_weight"] == "balanced"
    assert rep.target.class_counts[1] < 0.1 * 1500 and all(b.within_1pp for b in rep.fold_balance)


def test_bad_inputs_are_clear_errors(churn_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainUsageError, match=r"--target 'Churn' is not a column.*did you mean 'churn'"):
        train(_cfg(churn_csv, tmp_path, target="Churn"), now=NOW)
    const = tmp_path / "const.csv"
    pl.DataFrame({"a": range(50), "b": [1.5, 2.5] * 25, "y": ["yes"] * 50}).write_csv(const)
    with pytest.raises(DataError, match="constant"):
        train(_cfg(const, tmp_path, target="y"), now=NOW)
    nofeat = tmp_path / "nofeat.csv"
    pl.DataFrame({"id": [f"u{i}" for i in range(50)], "k": ["same"] * 50, "y": [0, 1] * 25}).write_csv(nofeat)
    with pytest.raises(DataError, match=r"no usable feature column.*id: ID-like.*k: constant"):
        train(_cfg(nofeat, tmp_path, target="y"), now=NOW)
    rare = tmp_path / "rare.csv"
    pl.DataFrame({"x": np.arange(60) % 7, "y": ["a"] * 57 + ["b"] * 3}).write_csv(rare)
    with pytest.raises(DataError, match="class 'b' has only 2 rows, too few for 3 stratified folds"):
        train(_cfg(rare, tmp_path, target="y"), now=NOW)
    with pytest.raises(TrainUsageError, match="no such file"):
        train(_cfg(tmp_path / "missing.csv", tmp_path), now=NOW)
    with pytest.raises(TrainUsageError, match="exceeds the"):
        train(_cfg(churn_csv, tmp_path, pca="500"), now=NOW)


def test_demo_train(tmp_path: Path) -> None:
    from models.training.demo import demo_train

    lines: list[str] = []
    reg = Registry(tmp_path / "registry")
    result = demo_train(tmp_path, reg, now=NOW, rows=600, say=lines.append)
    assert reg.live("churn") == 1 and reg.live("churn-online") == 1
    assert result.paths["html"].is_file() and any("== registry" in line for line in lines)
