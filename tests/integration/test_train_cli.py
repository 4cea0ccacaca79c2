"""`tidegate train` and `tidegate models` as a user runs them: real processes, real files, real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine.samples.churn import write_churn_csv
from models.training.datasets import write_public


def tg(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})},
    )


@pytest.mark.parametrize("command", [["train"], ["models"], ["models", "list"], ["models", "show"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    out = tg(*command, "--help", cwd=tmp_path)
    assert out.returncode == 0 and "usage: tidegate" in out.stdout


def test_train_promote_rollback(tmp_path: Path) -> None:
    data = write_churn_csv(tmp_path / "churn.csv", rows=700, seed=5)
    env = {"TIDEGATE_REGISTRY": str(tmp_path / "reg")}
    common = ["--data", str(data), "--target", "churn", "--name", "churn", "--folds", "3", "--models", "lr,gb"]
    first = tg("train", *common, "--online", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "dropped  customer_id: ID-like" in first.stdout and "parity max |Δ|" in first.stdout
    assert "registry " in first.stdout and "/churn/1 (live)" in first.stdout
    assert (tmp_path / "reports" / "churn" / "v1" / "report.html").is_file()
    second = tg("train", *common, "--seed", "1", "--no-promote", "--json", "--report", "r2", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["registry"]["version"] == 2 and report["registry"]["live"] is False
    assert report["export"]["parity"]["max_abs_diff"] <= 1e-4 and (tmp_path / "r2" / "report.json").is_file()

    listing = json.loads(tg("models", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert {(m["name"], m["live"], m["latest"]) for m in listing} == {("churn", 1, 2), ("churn-online", 1, 1)}
    assert tg("models", "promote", "churn", "2", cwd=tmp_path, env=env).returncode == 0
    shown = json.loads(tg("models", "show", "churn", "--json", cwd=tmp_path, env=env).stdout)
    assert shown["live"] == 2 and shown["manifest"]["version"] == 2 and shown["integrity"] == "sha256 ok"
    back = tg("models", "rollback", "churn", cwd=tmp_path, env=env)
    assert back.returncode == 0 and "version 1 is live (was 2)" in back.stdout
    text = tg("models", "show", "churn@2", cwd=tmp_path, env=env)
    assert text.returncode == 0 and "live is 1" in text.stdout
    assert [line.split()[1] for line in text.stdout.splitlines() if "-> " in line] == ["promote", "promote", "rollback"]
    again = tg("models", "rollback", "churn", cwd=tmp_path, env=env)
    assert again.returncode == 2 and "no earlier live version" in again.stderr and "Traceback" not in again.stderr


def test_public_data_sets(tmp_path: Path) -> None:
    bc = write_public("breast_cancer", tmp_path / "bc.csv")
    out = tg("train", "--data", str(bc), "--target", "diagnosis", "--name", "bc", "--models", "lr", "--json",
             "--registry", "reg", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["test"]["metrics"]["roc_auc"] > 0.95 and all(b["within_1pp"] for b in rep["fold_balance"])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--target", "nope"], 2, "--target 'nope' is not a column"),
        (["--target", "const"], 1, "constant"),
        (["--target", "y", "--models", "xgb"], 2, "unknown model family 'xgb'"),
        (["--target", "y", "--folds", "1"], 2, "at least 2 folds"),
        (["--target", "y", "--pca", "lots"], 2, "bad --pca"),
        (["--target", "rare"], 1, "class 'b' has only"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    data = tmp_path / "d.csv"
    pl.DataFrame(
        {
            "x": [float(i % 9) for i in range(40)],
            "const": ["k"] * 40,
            "y": ["p", "q"] * 20,
            "rare": ["a"] * 38 + ["b"] * 2,
        }
    ).write_csv(data)
    out = tg("train", "--data", str(data), "--name", "m", "--registry", "reg", *args, cwd=tmp_path)
    assert out.returncode == code, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "reg").exists()
