"""Report figures as inline SVG text (matplotlib, Agg backend, no files, deterministic ids)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

_RC = {"svg.hashsalt": "tidegate", "svg.fonttype": "none", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


@contextmanager
def _figure(ncols: int = 1, width: float = 4.2) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.4), squeeze=False)
        try:
            yield fig, axes[0]
        finally:
            plt.close(fig)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def roc_pr(y: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> str:
    """ROC and precision-recall curves on the test split (binary: the positive class; else one per class)."""
    with _figure(2) as (fig, (roc, pr)):
        classes = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
        for c in classes:
            truth = (y == c).astype(int)
            fpr, tpr, _ = roc_curve(truth, proba[:, c])
            prec, rec, _ = precision_recall_curve(truth, proba[:, c])
            roc.plot(fpr, tpr, label=labels[c])
            pr.plot(rec, prec, label=labels[c])
        roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        roc.set(title="ROC (test split)", xlabel="false positive rate", ylabel="true positive rate")
        pr.set(title="Precision-recall (test split)", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
        for ax in (roc, pr):
            ax.legend(loc="lower right" if ax is roc else "lower left", fontsize=8)
        return _svg(fig)


def confusion(matrix: list[list[int]], labels: tuple[str, ...], title: str) -> str:
    m = np.asarray(matrix)
    with _figure(1, 3.8) as (fig, (ax,)):
        ax.imshow(m, cmap="Blues")
        ax.grid(False)
        ticks = range(len(labels))
        ax.set(xticks=ticks, yticks=ticks, xticklabels=labels, yticklabels=labels, title=title)
        ax.set(xlabel="predicted", ylabel="true")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(
                    j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black"
                )
        return _svg(fig)


def calibration(y: np.ndarray, proba: np.ndarray) -> str:
    """Reliability: predicted probability of the positive class (binary) or of the predicted class vs observed."""
    if proba.shape[1] == 2:
        truth, p = (y == 1).astype(int), proba[:, 1]
    else:
        pred = proba.argmax(axis=1)
        truth, p = (pred == y).astype(int), proba.max(axis=1)
    frac, mean = calibration_curve(truth, p, n_bins=10, strategy="quantile")
    with _figure(1) as (fig, (ax,)):
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfect")
        ax.plot(mean, frac, marker="o", label="model")
        ax.set(title="Calibration (test split)", xlabel="predicted probability", ylabel="observed frequency")
        ax.legend(loc="upper left", fontsize=8)
        return _svg(fig)


def fold_bars(fold_metrics: dict[str, list[dict[str, float]]], metric: str) -> str:
    """Per-fold values of `metric` for each candidate family, side by side."""
    families = list(fold_metrics)
    k = len(next(iter(fold_metrics.values())))
    width = 0.8 / max(1, len(families))
    with _figure(1, 5.5) as (fig, (ax,)):
        for i, fam in enumerate(families):
            values = [f[metric] for f in fold_metrics[fam]]
            ax.bar(np.arange(k) + i * width, values, width, label=fam)
        ax.set_xticks(np.arange(k) + width * (len(families) - 1) / 2, [f"fold {i}" for i in range(k)])
        ax.set(title=f"{metric} per validation fold", ylabel=metric)
        ax.legend(fontsize=8, ncols=len(families))
        return _svg(fig)


def residuals(y: np.ndarray, pred: np.ndarray) -> str:
    """Predicted vs actual, and residuals vs predicted (test split)."""
    with _figure(2) as (fig, (pva, res)):
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        pva.scatter(y, pred, s=8, alpha=0.6)
        pva.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=0.8)
        pva.set(title="Predicted vs actual (test split)", xlabel="actual", ylabel="predicted")
        res.scatter(pred, y - pred, s=8, alpha=0.6)
        res.axhline(0, ls="--", c="grey", lw=0.8)
        res.set(title="Residuals (test split)", xlabel="predicted", ylabel="actual - predicted")
        return _svg(fig)
