"""The decision threshold for a binary classifier, tuned on out-of-fold validation predictions.

The threshold that maximizes F1 on the validation folds' predictions (never on the test split), so an
imbalanced target is not judged at 0.5 when a different cut serves it better.
"""

from __future__ import annotations

import msgspec
import numpy as np
from sklearn.metrics import f1_score, precision_recall_curve


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    value: float  # decide "positive" when P(positive) >= value
    f1_at_value: float  # F1 on the out-of-fold predictions at `value`
    f1_at_half: float  # and at 0.5, for comparison
    source: str = "out-of-fold validation predictions (max F1)"


def tune_threshold(y: np.ndarray, p_positive: np.ndarray) -> Threshold:
    precision, recall, cuts = precision_recall_curve(y, p_positive)
    p, r = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    best = int(np.argmax(f1))
    value = float(cuts[best])
    half = float(f1_score(y, (p_positive >= 0.5).astype(int), zero_division=0))
    return Threshold(value=value, f1_at_value=float(f1[best]), f1_at_half=half)
