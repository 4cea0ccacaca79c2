"""The whole image-training run, start to finish:

load the folder → stratified split → fine-tune EfficientNet-Lite0 (stage 1: the new head on the frozen
backbone; stage 2: the last K blocks too, at a lower learning rate) → the baselines on the same split (the
same network from scratch, a pixel-level linear model) → validation metrics → ONNX export and parity →
single-image latency → registry + report.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from engine.registry import ImageInput, Registry
from engine.serve.classify import to_input
from models.images.augment import build_augment
from models.images.baselines import fit_pixels
from models.images.config import ImageTrainConfig
from models.images.data import ImageSet, load_folder, stratified_split
from models.images.evaluate import class_metrics
from models.images.export import OPSET, ImageExport, check_parity, io_specs, to_onnx
from models.images.latency import measure
from models.images.loop import SplitTensors, StagePlan, StageResult, fit_stage, predict_proba
from models.images.network import BACKBONE, TransferNet, input_spec, resolve_device
from models.images.publish import publish
from models.images.report import ImageData, ImageReport, Option, RunResult

Log = Callable[[str], None] | None


@dataclass(frozen=True, slots=True)
class ImageTrainResult:
    report: ImageReport
    paths: dict[str, Path]
    onnx: bytes
    net: TransferNet  # the fine-tuned network (on CPU), for callers that compare with it


def train_images(
    cfg: ImageTrainConfig, *, now: dt.datetime, registry: Registry | None, promote: bool = True, log: Log = None
) -> ImageTrainResult:
    timings: dict[str, float] = {}
    device = resolve_device(cfg.device)
    spec = input_spec(cfg.image_size)
    t0 = time.perf_counter()
    images = load_folder(cfg.data, spec)
    train_idx, val_idx = stratified_split(images.labels, cfg.val_size, cfg.seed)
    tensors = _tensors(images, train_idx, val_idx, spec)
    timings["load"] = time.perf_counter() - t0
    k = len(images.classes)
    if log:
        log(f"loaded {len(images.labels)} images in {k} classes ({timings['load']:.1f}s); device {device}")
    augment = build_augment(cfg.image_size, flip=cfg.flip).to(device) if cfg.augment else None
    y_val = images.labels[val_idx]

    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    net = TransferNet(k, cfg.image_size, pretrained=True).to(device)
    stages = [
        _stage(net, 0, tensors, _plan(cfg, "head", cfg.head_lr, cfg.epochs), spec, augment, device, generator, log)
    ]
    if cfg.fine_tune_blocks:
        plan = _plan(cfg, "fine-tune", cfg.fine_tune_lr, cfg.epochs)
        stages.append(_stage(net, cfg.fine_tune_blocks, tensors, plan, spec, augment, device, generator, log))
    proba = predict_proba(net, tensors.val_inputs, cfg.batch_size, device)
    what = (
        f"{BACKBONE} ImageNet weights, new head; then the last {cfg.fine_tune_blocks} blocks at lr {cfg.fine_tune_lr:g}"
    )
    model = RunResult(
        name="fine-tuned",
        description=what if cfg.fine_tune_blocks else f"{BACKBONE} ImageNet weights, new head only",
        stages=stages,
        metrics=class_metrics(y_val, proba, images.classes),
        seconds=time.perf_counter() - t0,
    )
    timings["fine_tuned"] = model.seconds

    notes: list[str] = []
    baselines = []
    for name in cfg.baselines:
        t0 = time.perf_counter()
        if name == "scratch":
            torch.manual_seed(cfg.seed)
            scratch = TransferNet(k, cfg.image_size, pretrained=False).to(device)
            # random weights sit at chance for the first epochs: early stopping only in the second half
            plan = _plan(cfg, "scratch", cfg.scratch_lr, 2 * cfg.epochs, min_epochs=cfg.epochs, recalibrate_bn=True)
            stage = _stage(scratch, None, tensors, plan, spec, augment, device, generator, log)
            p = predict_proba(scratch, tensors.val_inputs, cfg.batch_size, device)
            run = RunResult(
                name="scratch",
                description=f"the same network from random weights, all layers, lr {cfg.scratch_lr:g}, "
                "same augmentation",
                stages=[stage],
                metrics=class_metrics(y_val, p, images.classes),
                seconds=time.perf_counter() - t0,
            )
            del scratch
        else:
            p, more = fit_pixels(
                images.pixels[train_idx], images.labels[train_idx], images.pixels[val_idx], seed=cfg.seed
            )
            notes += more
            run = RunResult(
                name="pixels",
                description="logistic regression on raw pixels (32×32 per channel, standardised)",
                stages=[],
                metrics=class_metrics(y_val, p, images.classes),
                seconds=time.perf_counter() - t0,
            )
        timings[f"baseline_{name}"] = run.seconds
        baselines.append(run)
        if log:
            log(f"baseline {name}: validation accuracy {run.metrics.accuracy:.4f} ({run.seconds:.1f}s)")

    net = net.cpu().eval()
    t0 = time.perf_counter()
    onnx = to_onnx(net, spec)
    val_inputs = tensors.val_inputs.numpy()
    parity = check_parity(onnx, net, val_inputs)
    inputs, outputs = io_specs(onnx)
    export = ImageExport(
        parity=parity,
        inputs=inputs,
        outputs=outputs,
        size_bytes=len(onnx),
        opset=OPSET,
        seconds=time.perf_counter() - t0,
    )
    timings["export"] = export.seconds
    latency = measure(onnx, net, val_inputs[:1])
    notes += _notes(model, baselines)

    report = ImageReport(
        name=cfg.name,
        created_at=now,
        seed=cfg.seed,
        device=str(device),
        backbone=BACKBONE,
        options=_options(cfg),
        preprocess=spec,
        data=ImageData(
            source=str(cfg.data),
            classes=images.classes,
            counts=images.counts(),
            train_counts=_counts(images.labels[train_idx], k),
            val_counts=_counts(y_val, k),
            skipped=list(images.skipped),
            fingerprint=images.fingerprint,
        ),
        model=model,
        baselines=baselines,
        export=export,
        latency=latency,
        timings=timings,
        notes=notes,
        versions=_versions(),
    )
    paths = publish(report, onnx, registry=registry, promote=promote, report_dir=cfg.report_dir)
    return ImageTrainResult(report=report, paths=paths, onnx=onnx, net=net)


def _tensors(images: ImageSet, train_idx: np.ndarray, val_idx: np.ndarray, spec: ImageInput) -> SplitTensors:
    return SplitTensors(
        train_pixels=torch.from_numpy(images.pixels[train_idx]).permute(0, 3, 1, 2).contiguous(),
        train_labels=torch.from_numpy(images.labels[train_idx]),
        val_inputs=torch.from_numpy(to_input(images.pixels[val_idx], spec)),  # exactly what the server computes
        val_labels=torch.from_numpy(images.labels[val_idx]),
    )


def _plan(
    cfg: ImageTrainConfig, name: str, lr: float, epochs: int, *, min_epochs: int = 1, recalibrate_bn: bool = False
) -> StagePlan:
    return StagePlan(
        name=name,
        lr=lr,
        epochs=epochs,
        patience=cfg.patience,
        batch_size=cfg.batch_size,
        min_epochs=min_epochs,
        recalibrate_bn=recalibrate_bn,
    )


def _stage(
    net: TransferNet,
    blocks: int | None,
    tensors: SplitTensors,
    plan: StagePlan,
    spec: ImageInput,
    augment: torch.nn.Module | None,
    device: torch.device,
    generator: torch.Generator,
    log: Log,
) -> StageResult:
    params = net.set_trainable(blocks)
    return fit_stage(
        net, params, tensors, plan, spec=spec, augment=augment, device=device, generator=generator, log=log
    )


def _counts(labels: np.ndarray, k: int) -> tuple[int, ...]:
    return tuple(int(n) for n in np.bincount(labels, minlength=k))


def _options(cfg: ImageTrainConfig) -> dict[str, Option]:
    out: dict[str, Option] = {}
    for key, value in asdict(cfg).items():
        if isinstance(value, Path):
            out[key] = str(value)
        elif isinstance(value, tuple):
            out[key] = ",".join(value) or "none"
        else:
            out[key] = value
    return out


def _notes(model: RunResult, baselines: list[RunResult]) -> list[str]:
    out = []
    for b in baselines:
        gain = model.metrics.accuracy - b.metrics.accuracy
        verb = "beats" if gain > 0 else "does not beat"
        out.append(
            f"fine-tuned {verb} the {b.name} baseline: validation accuracy {model.metrics.accuracy:.4f} vs "
            f"{b.metrics.accuracy:.4f} ({gain:+.4f}), F1 macro {model.metrics.f1_macro:.4f} vs {b.metrics.f1_macro:.4f}"
        )
    if model.metrics.rows < 50:
        out.append(
            f"only {model.metrics.rows} validation images: each one moves accuracy by {1 / model.metrics.rows:.3f}"
        )
    return out


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "kornia", "onnx", "onnxruntime", "efficientnet-lite-pytorch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "?"
    return out
