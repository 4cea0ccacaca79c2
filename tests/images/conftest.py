from __future__ import annotations

from pathlib import Path

import pytest

from engine.samples.shapes import ShapeSet, write_shapes


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> ShapeSet:
    """Four generated classes × 12 images (mixed sizes, some grayscale, some JPEG); read-only for tests."""
    return write_shapes(tmp_path_factory.mktemp("shapes") / "data", per_class=12, size=64, seed=3)


@pytest.fixture
def png_bytes(shapes: ShapeSet) -> bytes:
    return next(f for f in shapes.files if f.suffix == ".png").read_bytes()


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst
