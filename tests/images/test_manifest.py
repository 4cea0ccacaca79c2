"""The manifest's optional image field: old manifests stay readable, new ones round-trip."""

from __future__ import annotations

import datetime as dt

import msgspec

from engine.registry import Manifest, TensorSpec
from models.images.network import input_spec


def test_old_manifest_without_image_decodes_and_image_round_trips() -> None:
    base = Manifest(
        name="m",
        version=1,
        kind="onnx",
        task="classification",
        artifact="model.onnx",
        sha256="x",
        size_bytes=1,
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        inputs=(TensorSpec(name="image", dtype="float32", shape=(-1, 3, 64, 64)),),
        labels=("a", "b"),
    )
    old = msgspec.json.decode(msgspec.json.encode(base))
    del old["image"]
    assert msgspec.json.decode(msgspec.json.encode(old), type=Manifest).image is None
    new = msgspec.structs.replace(base, image=input_spec(64))
    back = msgspec.json.decode(msgspec.json.encode(new), type=Manifest)
    assert back.image == input_spec(64) and back.image.mean == (127.0, 127.0, 127.0)
