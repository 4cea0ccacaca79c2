"""The image folder loader and the stratified split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.samples.shapes import CLASSES, ShapeSet
from models.images.data import load_folder, scan, stratified_split
from models.images.errors import ImageDataError, ImageUsageError
from models.images.network import input_spec
from tests.images.conftest import copy_tree


def test_loads_every_class_at_the_spec_size(shapes: ShapeSet) -> None:
    data = load_folder(shapes.root, input_spec(48))
    assert data.classes == tuple(sorted(CLASSES))
    assert data.pixels.shape == (48, 48, 48, 3) and data.pixels.dtype == np.uint8
    assert data.counts() == (12, 12, 12, 12) and not data.skipped
    assert {Path(p).suffix for p in data.paths} == {".png", ".jpg"}
    assert load_folder(shapes.root, input_spec(48)).fingerprint == data.fingerprint


def test_unreadable_files_are_skipped_with_a_reason_and_hidden_ones_ignored(shapes: ShapeSet, tmp_path: Path) -> None:
    root = copy_tree(shapes.root, tmp_path / "data")
    (root / "circle" / "notes.txt").write_text("not an image, wrong extension: ignored")
    (root / "circle" / "fake.png").write_text("not an image")
    good = (root / "square" / "square_0000.png").read_bytes()
    (root / "square" / "cut.png").write_bytes(good[: len(good) // 2])
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(good)
    (root / "circle" / ".hidden.png").write_bytes(good)
    data = load_folder(root, input_spec(32))
    assert data.classes == tuple(sorted(CLASSES)) and len(data.labels) == 48
    assert {(s.path, s.reason) for s in data.skipped} == {
        ("circle/fake.png", "not_an_image"),
        ("square/cut.png", "corrupt"),
    }


def test_folders_that_cannot_train_a_classifier(shapes: ShapeSet, tmp_path: Path) -> None:
    with pytest.raises(ImageUsageError, match="not a folder"):
        scan(tmp_path / "missing")
    one = tmp_path / "one"
    copy_tree(shapes.root / "circle", one / "circle")
    with pytest.raises(ImageDataError, match="at least 2"):
        load_folder(one, input_spec(32))
    few = copy_tree(shapes.root, tmp_path / "few")
    for f in sorted((few / "stripes").iterdir())[1:]:
        f.unlink()
    with pytest.raises(ImageDataError, match=r"too few in stripes \(1\)"):
        load_folder(few, input_spec(32))


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    labels = np.repeat(np.arange(3), [50, 30, 2])
    tr, va = stratified_split(labels, 0.2, seed=7)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(labels)
    assert np.bincount(labels[va]).tolist() == [10, 6, 1] and np.bincount(labels[tr]).tolist() == [40, 24, 1]
    again = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(again[1], va) and not np.array_equal(stratified_split(labels, 0.2, seed=8)[1], va)
