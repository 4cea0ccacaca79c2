"""The model manifest and the live-history entry: the contract between training and serving.

A registry version folder holds one artifact (`model.onnx` for batch models, `model.river.json` for online
ones) and `manifest.json` describing it. Serving reads only these types; nothing here knows how a model
was trained. Schema evolution: add fields with defaults, bump `SCHEMA_VERSION` only for breaking changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

SCHEMA_VERSION = 1

Kind = Literal["onnx", "river", "arrays"]  # arrays: a .npz of plain arrays (the recommender)
Task = Literal["classification", "regression", "recommendation"]


class TensorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One model input or output: name, element type, shape (-1 = any batch size)."""

    name: str
    dtype: str  # "float32" | "int64" | "string"
    shape: tuple[int, ...] = (-1, 1)
    missing: str | None = None  # how a missing value is written: "NaN" for numbers, "" for strings
    column: str | None = None  # the data column this input is fed from (ONNX input names are sanitized)


class DataInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the model was trained on: the source, a fingerprint of its content, and its size."""

    source: str
    fingerprint: str  # sha256 of the loaded table's canonical CSV text
    rows: int
    train_rows: int = 0
    test_rows: int = 0


class ImageInput(msgspec.Struct, frozen=True, kw_only=True):
    """How an image model's input tensor is made from an image file (image classifiers only).

    Decode, convert to `color`, resize the whole image (no crop) to width × height with the Pillow `resize`
    filter, then `(pixel - mean) / std` per channel with pixels in 0..255, laid out as `layout` (float32).
    """

    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    color: str = "RGB"  # Pillow mode
    resize: str = "bilinear"  # Pillow resampling filter
    layout: str = "NCHW"


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a consumer needs to load, check and use one model version."""

    name: str
    version: int
    kind: Kind
    task: Task
    artifact: str  # the artifact's file name inside the version folder
    sha256: str  # of the artifact's bytes
    size_bytes: int
    created_at: dt.datetime
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()
    target: str = ""
    labels: tuple[str, ...] = ()  # class labels in output order (classification)
    positive_label: str | None = None  # binary classification: the label of output column 1
    threshold: float | None = None  # binary classification: decision threshold on the positive probability
    family: str = ""  # e.g. "gb" (GradientBoosting)
    params: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    data: DataInfo | None = None
    parent: int | None = None  # the version that was live when this one was registered
    report: str | None = None  # where the training report was written
    notes: str = ""
    image: ImageInput | None = None  # image classifiers: how an image becomes the input tensor
    schema_version: int = SCHEMA_VERSION


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the append-only live history: from `at` on, `version` is live (with `share` of traffic)."""

    at: dt.datetime
    action: Literal["promote", "rollback"]
    version: int
    previous: int | None = None
    share: float = 1.0
