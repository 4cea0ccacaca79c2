"""Training errors. Each message names the problem and the fix; the CLI prints it as one line.

TidegateError
├── UsageError
│   └── TrainUsageError       an option does not fit the data (unknown --target column, --models, --pca …)
└── TrainingError             the data or the model cannot do what was asked
    ├── DataError             bad input: constant target, no usable feature, a class too rare for the folds
    └── ExportError           a pipeline step did not convert to ONNX, or ONNX and scikit-learn disagree
"""

from __future__ import annotations

from engine.errors import TidegateError, UsageError


class TrainUsageError(UsageError):
    """An option does not fit the data (exit 2)."""


class TrainingError(TidegateError):
    """Training could not produce a trustworthy model (exit 1)."""


class DataError(TrainingError):
    """The data cannot support what was asked."""


class ExportError(TrainingError):
    """ONNX export or its parity check failed; the message names the pipeline step."""
