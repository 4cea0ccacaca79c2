"""The training report: one typed document (JSON), a short terminal table, and where the files went.

Everything the run decided and measured is here: inferred columns (and what was dropped, and why), the
target, the split, each fold's class balance, every candidate's per-fold metrics with mean ± std, the
search, the chosen model and its parameters, the tuned threshold, the test-split metrics and confusion
matrix, the ONNX parity, the online model's progressive metrics, and the registry entry.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec

from engine.registry import TensorSpec
from models.training.columns import ColumnPlan
from models.training.export import Parity
from models.training.online import OnlineResult
from models.training.target import TargetInfo
from models.training.threshold import Threshold
from models.training.tuning import Param, SearchSummary
from models.training.validation import FoldBalance

SHOWN = {"classification": ("roc_auc", "pr_auc", "f1", "accuracy"), "regression": ("rmse", "mae", "r2")}


class DataSummary(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    format: str
    rows: int  # loaded
    used_rows: int  # with a target value
    skipped_rows: int  # the reader could not parse them
    fingerprint: str
    columns: list[ColumnPlan]


class Split(msgspec.Struct, frozen=True, kw_only=True):
    train_rows: int
    test_rows: int
    test_size: float
    folds: int
    stratified: bool
    cv: str  # "StratifiedKFold" | "KFold"


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    family: str
    estimator: str
    params: dict[str, Param]
    fold_metrics: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    fit_seconds: float
    search: SearchSummary | None = None


class Skipped(msgspec.Struct, frozen=True, kw_only=True):
    family: str
    reason: str


class TestResult(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    metrics: dict[str, float]  # at 0.5 (binary) / argmax
    metrics_at_threshold: dict[str, float] | None = None  # binary, at the tuned threshold
    confusion: list[list[int]] | None = None  # rows = true label, columns = predicted (at the threshold used)


class ExportInfo(msgspec.Struct, frozen=True, kw_only=True):
    parity: Parity
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    size_bytes: int
    opset: dict[str, int]


class RegistryEntry(msgspec.Struct, frozen=True, kw_only=True):
    root: str
    name: str
    version: int
    live: bool
    online_name: str | None = None
    online_version: int | None = None


class TrainReport(msgspec.Struct, kw_only=True):
    name: str
    created_at: dt.datetime
    seed: int
    options: dict[str, Param]
    data: DataSummary
    target: TargetInfo
    split: Split
    fold_balance: list[FoldBalance]
    primary_metric: str
    candidates: list[Candidate]
    skipped: list[Skipped]
    chosen: str
    test: TestResult
    threshold: Threshold | None = None
    export: ExportInfo | None = None
    online: OnlineResult | None = None
    registry: RegistryEntry | None = None
    timings: dict[str, float] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)
    versions: dict[str, str] = msgspec.field(default_factory=dict)

    def candidate(self, family: str) -> Candidate:
        return next(c for c in self.candidates if c.family == family)


def write_json(report: TrainReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    return path


def read_json(path: Path) -> TrainReport:
    return msgspec.json.decode(path.read_bytes(), type=TrainReport)


def summary_table(report: TrainReport) -> str:
    """The short terminal table: candidates (CV mean ± std), the pick, the test split, export, registry."""
    task = report.target.task
    shown = SHOWN[task]
    kept = sum(c.kind != "dropped" for c in report.data.columns)
    lines = [f"data     {report.data.source}: {report.data.used_rows:,} rows, {kept} features"]
    lines += [f"dropped  {c.name}: {c.reason}" for c in report.data.columns if c.kind == "dropped"]
    labels = f", labels {'/'.join(report.target.labels)}" if report.target.labels else ""
    lines.append(
        f"target   {report.target.name} ({task}{labels}); {report.split.cv} {report.split.folds} folds on "
        f"{report.split.train_rows:,} rows, test split {report.split.test_rows:,} rows"
    )
    if report.fold_balance:
        worst = max(b.deviation_pp for b in report.fold_balance)
        lines.append(
            f"strata   fold class shares within {worst:.2f} pp of overall "
            f"({'ok, ≤ 1 pp' if all(b.within_1pp for b in report.fold_balance) else 'see report'})"
        )
    lines.append("")
    head = f"{'model':8s} {'estimator':28s} " + " ".join(f"{m:>17s}" for m in shown) + "   fit s"
    lines += [head, "-" * len(head)]
    for c in report.candidates:
        mark = "*" if c.family == report.chosen else " "
        cells = " ".join(f"{c.mean[m]:>8.4f} ± {c.std[m]:<6.4f}" for m in shown)
        lines.append(f"{mark}{c.family:7s} {c.estimator:28s} {cells} {c.fit_seconds:7.2f}")
    for s in report.skipped:
        lines.append(f" {s.family:7s} skipped: {s.reason}")
    lines.append("")
    test = report.test.metrics_at_threshold or report.test.metrics
    at = f" at threshold {report.threshold.value:.3f}" if report.threshold else ""
    lines.append(f"chosen   {report.chosen} by CV mean {report.primary_metric}; test split{at}: " + _fmt(test, shown))
    if report.online:
        lines.append(f"online   {report.online.model}, progressive: " + _fmt(report.online.metrics, shown))
    if report.export:
        p = report.export.parity
        lines.append(
            f"onnx     one graph, {len(report.export.inputs)} inputs, {report.export.size_bytes:,} bytes; "
            f"parity max |Δ| {p.max_abs_diff:.2e} ≤ {p.tolerance:.0e} on {p.rows} test rows"
        )
    if report.registry:
        r = report.registry
        lines.append(
            f"registry {r.root}/{r.name}/{r.version}"
            + (" (live)" if r.live else " (not promoted)")
            + (f"; online {r.online_name}/{r.online_version}" if r.online_name else "")
        )
    return "\n".join(lines)


def _fmt(metrics: dict[str, float], names: tuple[str, ...]) -> str:
    return "  ".join(f"{m} {metrics[m]:.4f}" for m in names if m in metrics)
