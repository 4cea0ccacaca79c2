"""Where a training run's outputs go: the registry (ONNX + online snapshot, with manifests) and the report."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.registry import DataInfo, Manifest, Registry, TensorSpec
from engine.registry.manifest import Kind
from models.training.columns import features
from models.training.report import RegistryEntry, TrainReport, write_json
from models.training.report_html import write_html

ONLINE_SUFFIX = "-online"


def publish(
    report: TrainReport,
    figures: dict[str, str],
    onnx: bytes | None,
    snapshot: bytes | None,
    *,
    registry: Registry | None,
    promote: bool,
    report_dir: Path | None,
) -> dict[str, Path]:
    """Register the artifacts (first version live unless promote=False), then write report.json/.html."""
    entry = None
    folder = report_dir
    if registry is not None and onnx is not None:
        man = registry.register(_manifest(report, "onnx", "model.onnx", onnx, report_dir), onnx, promote=promote)
        online_name = online_version = None
        if snapshot is not None:
            online = registry.register(
                _manifest(report, "river", "model.river.json", snapshot, report_dir), snapshot, promote=promote
            )
            online_name, online_version = online.name, online.version
        entry = RegistryEntry(
            root=str(registry.root),
            name=man.name,
            version=man.version,
            live=registry.live(man.name) == man.version,
            online_name=online_name,
            online_version=online_version,
        )
        folder = folder or Path("reports") / report.name / f"v{man.version}"
    report.registry = entry
    folder = folder or Path("reports") / report.name / "unregistered"
    paths = {
        "json": write_json(report, folder / "report.json"),
        "html": write_html(report, figures, folder / "report.html"),
    }
    if registry is not None and entry is not None:
        paths["registry"] = registry.root / entry.name / str(entry.version)
    return paths


def _manifest(report: TrainReport, kind: Kind, artifact: str, blob: bytes, report_dir: Path | None) -> Manifest:
    t = report.target
    chosen = report.candidate(report.chosen)
    if kind == "onnx":
        assert report.export is not None
        name, inputs, outputs = report.name, report.export.inputs, report.export.outputs
        test = report.test.metrics_at_threshold or report.test.metrics
        metrics = {f"test_{k}": v for k, v in test.items()}
        metrics |= {f"cv_{k}_mean": v for k, v in chosen.mean.items()}
        family, params = chosen.family, chosen.params
    else:
        assert report.online is not None
        name = report.name + ONLINE_SUFFIX
        inputs = tuple(
            TensorSpec(
                name=c.name,
                dtype="float32" if c.kind == "numeric" else "string",
                shape=(),
                missing="absent",
                column=c.name,
            )
            for c in features(report.data.columns)
        )
        outputs = ()
        metrics = {f"progressive_{k}": v for k, v in report.online.metrics.items()}
        family, params = "river-linear", {"model": report.online.model}
    return Manifest(
        name=name,
        version=0,  # allocated by the registry
        kind=kind,
        task=t.task,
        artifact=artifact,
        sha256="",
        size_bytes=len(blob),
        created_at=report.created_at,
        inputs=inputs,
        outputs=outputs,
        target=t.name,
        labels=t.labels,
        positive_label=t.positive_label,
        threshold=report.threshold.value if report.threshold and kind == "onnx" else None,
        family=family,
        params=dict(params),
        metrics=metrics,
        data=DataInfo(
            source=report.data.source,
            fingerprint=report.data.fingerprint,
            rows=report.data.used_rows,
            train_rows=report.split.train_rows,
            test_rows=report.split.test_rows,
        ),
        report=str(report_dir) if report_dir else None,
        notes="options " + msgspec.json.encode(report.options).decode(),
    )
