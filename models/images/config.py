"""The one frozen configuration of an image-training run (built by the CLI, passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.images.errors import ImageUsageError

BASELINES = ("scratch", "pixels")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, slots=True)
class ImageTrainConfig:
    """`epochs` bounds each stage (head, then fine-tuning); the from-scratch baseline gets both stages' budget."""

    data: Path
    name: str
    epochs: int = 10
    fine_tune_blocks: int = 4  # K: the last K MBConv blocks (with the 1×1 head conv) train in stage 2; 0 = none
    augment: bool = True
    flip: bool = True  # horizontal flips (turn off for orientation-sensitive classes: digits, text)
    image_size: int = 224
    device: str = "auto"
    seed: int = 0
    val_size: float = 0.2
    batch_size: int = 32
    head_lr: float = 3e-3
    fine_tune_lr: float = 3e-4
    scratch_lr: float = 2e-3
    patience: int = 3  # early stopping: epochs without a lower validation loss
    baselines: tuple[str, ...] = BASELINES
    report_dir: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs {self.epochs}: use at least 1"),
            (0 <= self.fine_tune_blocks <= 16, f"--fine-tune-blocks {self.fine_tune_blocks}: use 0-16"),
            (32 <= self.image_size <= 512, f"--image-size {self.image_size}: use 32-512 pixels"),
            (self.device in DEVICES, f"--device {self.device!r}: use one of {', '.join(DEVICES)}"),
            (0.05 <= self.val_size <= 0.5, f"--val-size {self.val_size}: use 0.05-0.5"),
            (self.batch_size >= 2, f"--batch-size {self.batch_size}: use at least 2"),
            (self.patience >= 1, f"--patience {self.patience}: use at least 1"),
        ]
        checks += [
            (b in BASELINES, f"unknown baseline {b!r}: use {', '.join(BASELINES)} or none") for b in self.baselines
        ]
        for ok, msg in checks:
            if not ok:
                raise ImageUsageError(msg)
