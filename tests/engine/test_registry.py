"""The file registry: versions, manifests, sha256 checks, and the append-only live history."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest

from engine.registry import (
    DataInfo,
    HistoryError,
    Manifest,
    Registry,
    RegistryError,
    TensorSpec,
    UnknownModelError,
)
from engine.registry.store import HISTORY

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def _manifest(name: str = "churn", minute: int = 0) -> Manifest:
    return Manifest(
        name=name,
        version=0,
        kind="onnx",
        task="classification",
        artifact="model.onnx",
        sha256="",
        size_bytes=0,
        created_at=T0 + dt.timedelta(minutes=minute),
        inputs=(TensorSpec(name="tenure", dtype="float32", missing="NaN", column="tenure"),),
        labels=("No", "Yes"),
        metrics={"test_roc_auc": 0.85},
        data=DataInfo(source="x.csv", fingerprint="ab" * 32, rows=10),
    )


def test_register_allocates_versions_and_checks_sha(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    first = reg.register(_manifest(), b"onnx-1", promote=True)
    second = reg.register(_manifest(minute=1), b"onnx-2", promote=False)
    assert (first.version, second.version) == (1, 2)
    assert first.parent is None and second.parent == 1  # parent = the version live at registration
    assert reg.versions("churn") == [1, 2] and reg.names() == ["churn"]
    assert reg.live("churn") == 1  # not promoted: the first stays live
    man, path = reg.artifact("churn", 2)
    assert path.read_bytes() == b"onnx-2" and man.size_bytes == 6 and len(man.sha256) == 64
    stored = msgspec.json.decode((tmp_path / "churn" / "2" / "manifest.json").read_bytes(), type=Manifest)
    assert stored == man and stored.inputs[0].column == "tenure"
    path.write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="does not match its manifest's sha256"):
        reg.artifact("churn", 2)
    assert reg.manifest("churn").version == 1  # the live one by default


def test_promote_and_rollback_follow_the_history(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for i in range(3):
        reg.register(_manifest(minute=i), f"m{i}".encode(), promote=i == 0)
    assert reg.live("churn") == 1
    reg.promote("churn", 2, T0 + dt.timedelta(hours=1))
    reg.promote("churn", 3, T0 + dt.timedelta(hours=2))
    before = (tmp_path / "churn" / HISTORY).read_bytes()
    assert reg.rollback("churn", T0 + dt.timedelta(hours=3)).version == 2
    assert reg.live("churn") == 2
    after = (tmp_path / "churn" / HISTORY).read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1  # append-only
    assert reg.rollback("churn", T0 + dt.timedelta(hours=4)).version == 1
    with pytest.raises(HistoryError, match="no earlier live version"):
        reg.rollback("churn", T0 + dt.timedelta(hours=5))
    with pytest.raises(HistoryError, match="already live"):
        reg.promote("churn", 1, T0 + dt.timedelta(hours=5))
    history = reg.history("churn")
    assert [(e.action, e.version, e.previous) for e in history] == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("promote", 3, 2),
        ("rollback", 2, 3),
        ("rollback", 1, 2),
    ]
    assert history[0].at == T0 and history[-1].at == T0 + dt.timedelta(hours=4)


def test_unknown_names_and_versions_are_usage_errors(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.register(_manifest(), b"x", promote=True)
    with pytest.raises(UnknownModelError, match="no version 7") as info:
        reg.manifest("churn", 7)
    assert info.value.exit_code == 2
    with pytest.raises(UnknownModelError, match="no model named 'nope'"):
        reg.rollback("nope", T0)
    with pytest.raises(UnknownModelError, match="bad model name"):
        reg.register(_manifest(name="../escape"), b"x", promote=True)
    assert Registry(tmp_path / "empty").names() == []


def test_a_damaged_history_line_is_named(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.register(_manifest(), b"x", promote=True)
    with (tmp_path / "churn" / HISTORY).open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(RegistryError, match="line 2"):
        reg.live("churn")


def test_concurrent_registrations_get_distinct_versions(tmp_path: Path) -> None:
    def one(i: int) -> int:
        return Registry(tmp_path).register(_manifest(minute=i), f"a{i}".encode(), promote=True).version

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(one, range(16)))
    assert sorted(versions) == list(range(1, 17))
    reg = Registry(tmp_path)
    assert all(reg.artifact("churn", v)[1].read_bytes() == f"a{versions.index(v)}".encode() for v in versions)
    assert len(reg.history("churn")) == 16 and not list((tmp_path / "churn").glob(".incoming-*"))


def test_registry_imports_no_training_libraries() -> None:
    code = (
        "import sys, engine.registry; heavy = {'sklearn', 'river', 'duckdb', 'polars', 'bytewax', 'torch', 'numpy'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
