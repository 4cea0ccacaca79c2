"""The image-training report: one typed document (JSON), a short terminal table.

It holds the data (classes, counts, the split, skipped files), the preprocessing, the fine-tuned network's
stages with their per-epoch curves and its validation metrics, the baselines measured on the same split,
the ONNX export and its parity, the single-image latency, and the registry entry.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec

from engine.registry import ImageInput
from models.images.data import SkippedFile
from models.images.evaluate import ClassMetrics
from models.images.export import ImageExport
from models.images.latency import Latency
from models.images.loop import StageResult
from models.training.report import RegistryEntry

Option = str | int | float | bool | None


class ImageData(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    classes: tuple[str, ...]
    counts: tuple[int, ...]  # per class, readable images
    train_counts: tuple[int, ...]
    val_counts: tuple[int, ...]
    skipped: list[SkippedFile]
    fingerprint: str

    @property
    def images(self) -> int:
        return sum(self.counts)


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # "fine-tuned", "scratch", "pixels"
    description: str
    stages: list[StageResult]  # empty for the pixel model
    metrics: ClassMetrics  # on the validation split
    seconds: float


class ImageReport(msgspec.Struct, kw_only=True):
    name: str
    created_at: dt.datetime
    seed: int
    device: str
    backbone: str
    options: dict[str, Option]
    preprocess: ImageInput
    data: ImageData
    model: RunResult
    baselines: list[RunResult]
    export: ImageExport | None = None
    latency: Latency | None = None
    registry: RegistryEntry | None = None
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)
    versions: dict[str, str] = msgspec.field(default_factory=dict)

    def runs(self) -> list[RunResult]:
        return [self.model, *self.baselines]


def write_json(report: ImageReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    return path


def read_json(path: Path) -> ImageReport:
    return msgspec.json.decode(path.read_bytes(), type=ImageReport)


def epochs_summary(run: RunResult) -> str:
    parts = [
        f"{s.name} {len(s.epochs)}/{s.max_epochs} ep (best {s.best_epoch}"
        + (", stopped early)" if s.stopped_early else ")")
        for s in run.stages
    ]
    return "; ".join(parts) or "closed form"


def summary_table(report: ImageReport) -> str:
    d = report.data
    lines = [
        f"data     {d.source}: {d.images:,} images in {len(d.classes)} classes "
        f"({', '.join(f'{c} {n}' for c, n in zip(d.classes, d.counts, strict=True))}); "
        f"train {sum(d.train_counts)}, validation {sum(d.val_counts)} (stratified)"
        + (f"; {len(d.skipped)} files skipped" if d.skipped else ""),
        f"network  {report.backbone} at {report.preprocess.width}×{report.preprocess.height} on {report.device}",
        "",
    ]
    cols = ("accuracy", "prec(m)", "rec(m)", "F1(m)", "logloss")
    head = f"{'run':12s} " + " ".join(f"{c:>8s}" for c in cols) + f" {'time s':>7s}  epochs"
    lines += [head, "-" * len(head)]
    for run in report.runs():
        m = run.metrics
        lines.append(
            f"{run.name:12s} {m.accuracy:8.4f} {m.precision_macro:8.4f} {m.recall_macro:8.4f} {m.f1_macro:8.4f} "
            f"{m.log_loss:8.4f} {run.seconds:7.1f}  {epochs_summary(run)}"
        )
    lines.append("")
    if report.export:
        e = report.export
        p = e.parity
        lines.append(
            f"onnx     {e.size_bytes:,} bytes, opset {e.opset}; parity max |Δ p| {p.max_abs_diff:.2e} ≤ "
            f"{p.tolerance:.0e} on {p.rows} validation images ({p.label_mismatches} label mismatches)"
        )
    if report.latency:
        lat = report.latency
        lines.append(
            f"latency  one image, {lat.threads} thread: onnxruntime {lat.onnx_ms_p50:.2f} ms "
            f"(p99 {lat.onnx_ms_p99:.2f}), torch {lat.torch_ms_p50:.2f} ms (p99 {lat.torch_ms_p99:.2f}) "
            f"→ {lat.speedup:.2f}×"
        )
    if report.registry:
        r = report.registry
        lines.append(f"registry {r.root}/{r.name}/{r.version}" + (" (live)" if r.live else " (not promoted)"))
    lines += [f"note     {n}" for n in report.notes]
    return "\n".join(lines)
