"""Image-training errors (the training tree's, so the CLI prints one line with the right exit code).

TrainUsageError → ImageUsageError   an option does not fit (exit 2): --device cuda without a GPU, a bad size
DataError → ImageDataError          the folder cannot train a classifier: < 2 classes, a class with < 2 images
ExportError                         ONNX export failed or its parity check did not pass
"""

from __future__ import annotations

from models.training.errors import DataError, ExportError, TrainUsageError

__all__ = ["ExportError", "ImageDataError", "ImageUsageError"]


class ImageUsageError(TrainUsageError):
    """An option does not fit this run (exit 2)."""


class ImageDataError(DataError):
    """The image folder cannot support training (exit 1)."""
