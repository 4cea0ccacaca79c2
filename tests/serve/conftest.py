from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from engine.registry import Registry
from engine.serve.app import create_app
from engine.serve.config import ServeConfig
from tests.serve.builders import TOKEN, build_registry


@pytest.fixture(scope="session")
def serve_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    build_registry(folder)
    return folder


@pytest.fixture(scope="session")
def registry(serve_dir: Path) -> Registry:
    return Registry(serve_dir / "registry")


@pytest.fixture
def client(serve_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """An in-process client of a fresh app (its own real-time state and spool) over the shared registry."""
    cfg = ServeConfig(
        registry=str(serve_dir / "registry"),
        spool_dir=str(tmp_path / "spool"),
        admin_token=TOKEN,
        watch_interval_s=0,
        log_level="warning",
    )
    with TestClient(create_app(cfg)) as c:
        yield c
