"""The real image sets that ship inside packages, and one short training run on a real set (slow)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PIL import Image

from models.images import ImageTrainConfig, train_images
from models.images.datasets import write_digits, write_faces, write_textures


def test_faces_textures_digits_are_written_offline(tmp_path: Path) -> None:
    faces = write_faces(tmp_path / "faces")
    assert {d.name: len(list(d.iterdir())) for d in faces.iterdir()} == {"face": 100, "background": 100}
    textures = write_textures(tmp_path / "textures")
    assert {d.name: len(list(d.iterdir())) for d in textures.iterdir()} == {"brick": 64, "grass": 64, "gravel": 64}
    with Image.open(next((textures / "brick").iterdir())) as im:
        assert im.size == (64, 64)
    digits = write_digits(tmp_path / "digits", per_class=5)
    assert sorted(d.name for d in digits.iterdir()) == [str(i) for i in range(10)]
    assert all(len(list(d.iterdir())) == 5 for d in digits.iterdir())


@pytest.mark.slow
def test_fine_tuning_on_real_textures_learns_what_raw_pixels_cannot(tmp_path: Path) -> None:
    data = write_textures(tmp_path / "textures")
    cfg = ImageTrainConfig(
        data=data, name="textures", epochs=3, fine_tune_blocks=2, image_size=64, val_size=0.5,
        baselines=("pixels",), report_dir=tmp_path / "report",
    )  # fmt: skip
    rep = train_images(cfg, now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), registry=None).report
    assert rep.model.metrics.accuracy >= 0.9 and rep.export is not None and rep.export.parity.max_abs_diff <= 1e-4
    assert rep.model.metrics.accuracy > rep.baselines[0].metrics.accuracy + 0.1
