"""The one frozen configuration of a training run, built at the edge (CLI) and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.training.errors import TrainUsageError

TaskOption = Literal["auto", "classification", "regression"]


@dataclass(frozen=True, slots=True)
class PcaOption:
    """`off`, `auto` (keep the components explaining 95 % of the variance) or a fixed number of components."""

    mode: Literal["off", "auto", "fixed"] = "off"
    components: int = 0

    @classmethod
    def parse(cls, text: str) -> PcaOption:
        text = text.strip().lower()
        if text == "off":
            return cls("off")
        if text == "auto":
            return cls("auto")
        if text.isdigit() and int(text) > 0:
            return cls("fixed", int(text))
        msg = f"bad --pca {text!r}: use off, auto or a number of components such as 10"
        raise TrainUsageError(msg)

    @property
    def label(self) -> str:
        return str(self.components) if self.mode == "fixed" else self.mode


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything `tidegate train` needs; same config (and seed) → same result."""

    data: str
    target: str
    name: str
    task: TaskOption = "auto"
    models: tuple[str, ...] = ("lr", "rf", "gb")
    folds: int = 5
    tune: int = 0  # candidates per family for the randomized search; 0 = defaults only
    pca: PcaOption = PcaOption()
    test_size: float = 0.2
    seed: int = 0
    positive: str | None = None  # binary: which label is the positive class
    online: bool = False
    jobs: int = 1  # parallel fits (joblib n_jobs)
    max_levels: int = 30  # one-hot levels kept per categorical column (most frequent first)
    report_dir: Path | None = None
    export: bool = True

    def __post_init__(self) -> None:
        if self.folds < 2:
            msg = f"--folds {self.folds}: cross-validation needs at least 2 folds"
            raise TrainUsageError(msg)
        if not 0.05 <= self.test_size <= 0.5:
            msg = f"--test-size {self.test_size}: use a share between 0.05 and 0.5"
            raise TrainUsageError(msg)
        if self.tune < 0:
            msg = f"--tune {self.tune}: use 0 (no search) or a number of candidates per model family"
            raise TrainUsageError(msg)
        if not self.models:
            msg = "--models is empty: name at least one family, e.g. lr,rf,gb"
            raise TrainUsageError(msg)
