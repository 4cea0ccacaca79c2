"""Where an image-training run goes: the registry (model.onnx + a manifest with the classes and the
preprocessing) and the report folder (report.json + report.html), like the tabular models."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.registry import DataInfo, Manifest, Registry
from models.images.report import ImageReport, write_json
from models.images.report_html import figures, write_html
from models.training.report import RegistryEntry

ARTIFACT = "model.onnx"


def manifest(report: ImageReport, onnx: bytes, report_dir: Path | None) -> Manifest:
    assert report.export is not None
    d = report.data
    metrics = {f"val_{k}": v for k, v in report.model.metrics.headline().items()}
    for b in report.baselines:
        metrics |= {f"baseline_{b.name}_val_{k}": v for k, v in b.metrics.headline().items()}
    if report.latency:
        metrics |= {"latency_onnx_ms_p50": report.latency.onnx_ms_p50}
    return Manifest(
        name=report.name,
        version=0,  # allocated by the registry
        kind="onnx",
        task="classification",
        artifact=ARTIFACT,
        sha256="",
        size_bytes=len(onnx),
        created_at=report.created_at,
        inputs=report.export.inputs,
        outputs=report.export.outputs,
        target="class",
        labels=d.classes,
        family=f"{report.backbone}-transfer",
        params={k: v for k, v in report.options.items() if k not in ("data", "report_dir")},
        metrics=metrics,
        data=DataInfo(
            source=d.source,
            fingerprint=d.fingerprint,
            rows=d.images,
            train_rows=sum(d.train_counts),
            test_rows=sum(d.val_counts),
        ),
        report=str(report_dir) if report_dir else None,
        notes="options " + msgspec.json.encode(report.options).decode(),
        image=report.preprocess,
    )


def publish(
    report: ImageReport, onnx: bytes, *, registry: Registry | None, promote: bool, report_dir: Path | None
) -> dict[str, Path]:
    """Register the export (live unless promote=False), then write report.json and report.html."""
    folder = report_dir
    if registry is not None:
        man = registry.register(manifest(report, onnx, report_dir), onnx, promote=promote)
        report.registry = RegistryEntry(
            root=str(registry.root), name=man.name, version=man.version, live=registry.live(man.name) == man.version
        )
        folder = folder or Path("reports") / report.name / f"v{man.version}"
    folder = folder or Path("reports") / report.name / "unregistered"
    paths = {
        "json": write_json(report, folder / "report.json"),
        "html": write_html(report, figures(report), folder / "report.html"),
    }
    if report.registry is not None:
        paths["registry"] = Path(report.registry.root) / report.registry.name / str(report.registry.version)
    return paths
