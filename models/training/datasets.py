"""Real, public tabular data sets that ship inside installed packages (nothing is downloaded).

breast_cancer  scikit-learn   569 rows × 30 numeric, target diagnosis (malignant/benign)    classification
diabetes       scikit-learn   442 rows × 10 numeric, target progression (one year on)       regression
wine           scikit-learn   178 rows × 13 numeric, target cultivar (3 classes)            classification
phishing       River         1250 rows × 9 mixed,    target is_phishing (true/false)        classification

python -m models.training.datasets NAME OUT.csv     # write one as CSV for `tidegate train --data`
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

TARGETS = {"breast_cancer": "diagnosis", "diabetes": "progression", "wine": "cultivar", "phishing": "is_phishing"}


def _sklearn(loader: Callable[..., object], target: str, names: list[str] | None = None) -> pl.DataFrame:
    bunch: Any = loader()  # a sklearn Bunch
    data = np.asarray(bunch.data)
    cols = {str(n): data[:, i] for i, n in enumerate(bunch.feature_names)}
    y = np.asarray(bunch.target)
    values = [names[int(v)] for v in y] if names is not None else y
    return pl.DataFrame(cols).with_columns(pl.Series(target, values))


def public_table(name: str) -> pl.DataFrame:
    """One of the bundled data sets as a frame whose last column is the target (`TARGETS[name]`)."""
    from sklearn import datasets as sk

    if name == "breast_cancer":
        return _sklearn(sk.load_breast_cancer, TARGETS[name], ["malignant", "benign"])
    if name == "diabetes":
        return _sklearn(lambda: sk.load_diabetes(scaled=False), TARGETS[name])
    if name == "wine":
        return _sklearn(sk.load_wine, TARGETS[name], ["class_0", "class_1", "class_2"])
    if name == "phishing":
        from river import datasets as rd

        rows = [{**x, TARGETS[name]: bool(y)} for x, y in rd.Phishing()]
        return pl.DataFrame(rows)
    msg = f"unknown data set {name!r}: use one of {', '.join(TARGETS)}"
    raise ValueError(msg)


def write_public(name: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    public_table(name).write_csv(path)
    return path


if __name__ == "__main__":  # pragma: no cover - a convenience for demos
    if len(sys.argv) != 3 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m models.training.datasets {{{'|'.join(TARGETS)}}} OUT.csv")
    print(write_public(sys.argv[1], Path(sys.argv[2])))
