"""The pixel-level baseline: multinomial logistic regression on the raw pixels (average-pooled to 32 × 32 per
channel, standardised). It shows what a model with no learned features gets from the same split; the other
baseline, the same network trained from scratch, runs through the training loop like the fine-tuned one."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

POOLED = 32


def pixel_features(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 → (N, C × 32 × 32) floats in 0..1."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    return torch.nn.functional.adaptive_avg_pool2d(x, POOLED).flatten(1).numpy()


def fit_pixels(
    train: np.ndarray, y_train: np.ndarray, val: np.ndarray, *, seed: int, max_iter: int = 500
) -> tuple[np.ndarray, list[str]]:
    """Validation probabilities of the pixel model, and notes (e.g. that it did not converge)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=max_iter, random_state=seed))
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(pixel_features(train), y_train)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(f"pixel logistic regression stopped at max_iter={max_iter} before converging")
    return model.predict_proba(pixel_features(val)), notes
