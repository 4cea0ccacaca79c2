"""One training stage: mini-batch AdamW with cross-entropy, augmentation on the training split only, early
stopping on the validation loss (the best epoch's weights are restored), a history row per epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import numpy as np
import torch
from torch import nn

from engine.registry import ImageInput
from models.images.augment import normalise

WEIGHT_DECAY = 1e-4


class EpochStat(msgspec.Struct, frozen=True, kw_only=True):
    epoch: int
    train_loss: float  # on the (augmented) training batches, while the weights moved
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


class StageResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # "head", "fine-tune", "scratch"
    lr: float
    trainable_params: int
    max_epochs: int
    epochs: list[EpochStat]
    best_epoch: int  # 1-based; its weights are the ones kept
    stopped_early: bool
    seconds: float

    @property
    def best(self) -> EpochStat:
        return self.epochs[self.best_epoch - 1]


@dataclass(frozen=True, slots=True)
class SplitTensors:
    """The training split as uint8 (N, C, H, W) pixels, the validation split as ready model inputs."""

    train_pixels: torch.Tensor
    train_labels: torch.Tensor
    val_inputs: torch.Tensor
    val_labels: torch.Tensor


@dataclass(frozen=True, slots=True)
class StagePlan:
    name: str
    lr: float
    epochs: int
    patience: int
    batch_size: int
    min_epochs: int = 1  # early stopping may end the stage only after this many epochs
    recalibrate_bn: bool = False  # re-estimate BatchNorm statistics on the training split before validating


def fit_stage(
    net: nn.Module,
    params: list[nn.Parameter],
    data: SplitTensors,
    plan: StagePlan,
    *,
    spec: ImageInput,
    augment: nn.Module | None,
    device: torch.device,
    generator: torch.Generator,
    log: Callable[[str], None] | None = None,
) -> StageResult:
    opt = torch.optim.AdamW(params, lr=plan.lr, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    n = len(data.train_labels)
    history: list[EpochStat] = []
    best_loss, best_epoch, best_state, waited = math.inf, 0, _snapshot(net), 0
    start = time.perf_counter()
    for epoch in range(1, plan.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        total_loss, correct = 0.0, 0
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n, plan.batch_size):
            idx = order[lo : lo + plan.batch_size]
            x = data.train_pixels[idx].to(device).float() / 255.0
            if augment is not None:
                x = augment(x)
            y = data.train_labels[idx].to(device)
            logits = net(normalise(x, spec))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.detach().argmax(1) == y).sum())
        if plan.recalibrate_bn:
            recalibrate_bn(net, data.train_pixels, plan.batch_size, spec, device)
        val_loss, val_acc = evaluate_loss(net, data.val_inputs, data.val_labels, plan.batch_size, device)
        stat = EpochStat(
            epoch=epoch,
            train_loss=total_loss / n,
            train_accuracy=correct / n,
            val_loss=val_loss,
            val_accuracy=val_acc,
            seconds=time.perf_counter() - t0,
        )
        history.append(stat)
        if log:
            log(
                f"{plan.name:9s} epoch {epoch:2d}: train loss {stat.train_loss:.4f} acc {stat.train_accuracy:.3f} · "
                f"val loss {val_loss:.4f} acc {val_acc:.3f} · {stat.seconds:.1f}s"
            )
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, best_state, waited = val_loss, epoch, _snapshot(net), 0
        else:
            waited += 1
            if waited >= plan.patience and epoch >= plan.min_epochs:
                break
    net.load_state_dict(best_state)
    return StageResult(
        name=plan.name,
        lr=plan.lr,
        trainable_params=sum(p.numel() for p in params),
        max_epochs=plan.epochs,
        epochs=history,
        best_epoch=best_epoch or len(history),
        stopped_early=len(history) < plan.epochs,
        seconds=time.perf_counter() - start,
    )


def recalibrate_bn(
    net: nn.Module, pixels: torch.Tensor, batch_size: int, spec: ImageInput, device: torch.device
) -> None:
    """Running BatchNorm statistics as the plain average over the (unaugmented) training split.

    A network trained from random weights moves fast; the exponential running averages lag behind it, and
    eval-mode predictions can collapse onto one class while training accuracy climbs. One forward pass
    without gradients fixes the statistics (the baseline should fail for want of data, not of bookkeeping).
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.training]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    with torch.no_grad():
        for lo in range(0, len(pixels), batch_size):
            net(normalise(pixels[lo : lo + batch_size].to(device).float() / 255.0, spec))
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum


def predict_proba(net: nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    """Class probabilities (N, K) in eval mode, batch by batch."""
    net.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(inputs), batch_size):
            out.append(torch.softmax(net(inputs[lo : lo + batch_size].to(device)), dim=1).cpu())
    return torch.cat(out).numpy()


def evaluate_loss(
    net: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device
) -> tuple[float, float]:
    proba = torch.from_numpy(predict_proba(net, inputs, batch_size, device))
    loss = float(nn.functional.nll_loss(torch.log(proba.clamp_min(1e-12)), labels))
    return loss, float((proba.argmax(1) == labels).float().mean())


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
