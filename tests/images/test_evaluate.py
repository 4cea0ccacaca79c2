from __future__ import annotations

import numpy as np
import pytest

from models.images.evaluate import class_metrics


def test_metrics_macro_per_class_and_confusion() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])  # class 2 is never predicted
    proba = np.eye(3)[pred] * 0.9 + 0.1 / 3
    m = class_metrics(y, proba, ("a", "b", "c"))
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    a, b, c = m.per_class
    assert (a.precision, a.recall, a.support) == (1.0, pytest.approx(2 / 3), 3)
    assert (b.precision, b.recall) == (0.5, 1.0) and (c.precision, c.recall, c.f1) == (0.0, 0.0, 0.0)
    assert m.recall_macro == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m.f1_macro == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert m.log_loss > 0 and m.headline()["f1_macro"] == m.f1_macro
