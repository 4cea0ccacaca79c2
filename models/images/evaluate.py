"""Classification metrics on the validation split, one way for the fine-tuned network and every baseline:
accuracy, precision / recall / F1 (macro and per class) and the confusion matrix (rows true, columns predicted)."""

from __future__ import annotations

import msgspec
import numpy as np
from sklearn import metrics as skm


class PerClass(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    precision: float
    recall: float
    f1: float
    support: int


class ClassMetrics(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    log_loss: float
    per_class: list[PerClass]
    confusion: list[list[int]]

    def headline(self) -> dict[str, float]:
        return {
            "accuracy": self.accuracy,
            "precision_macro": self.precision_macro,
            "recall_macro": self.recall_macro,
            "f1_macro": self.f1_macro,
        }


def class_metrics(y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> ClassMetrics:
    k = len(labels)
    pred = proba.argmax(axis=1)
    codes = list(range(k))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=codes, zero_division=0)
    mp, mr, mf, _ = skm.precision_recall_fscore_support(y, pred, labels=codes, average="macro", zero_division=0)
    return ClassMetrics(
        rows=len(y),
        accuracy=float(skm.accuracy_score(y, pred)),
        precision_macro=float(mp),
        recall_macro=float(mr),
        f1_macro=float(mf),
        log_loss=float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)).mean()),
        per_class=[
            PerClass(label=labels[i], precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i]))
            for i in codes
        ],
        confusion=skm.confusion_matrix(y, pred, labels=codes).tolist(),
    )
