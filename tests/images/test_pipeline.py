"""The whole run on generated shapes: two stages, baselines, metrics, ONNX parity, registry, report; and the
registered model gives what the training process computed on the same file (training/serving parity)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import torch

from engine.registry import Registry
from engine.samples.shapes import ShapeSet
from engine.serve.classify import ClassifyConfig, ImageClassifiers, decode_image, to_input
from models.images import ImageTrainConfig, train_images
from models.images.report import read_json, summary_table

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def run(shapes: ShapeSet, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("run")
    cfg = ImageTrainConfig(
        data=shapes.root, name="shapes", epochs=2, fine_tune_blocks=2, image_size=64, batch_size=16,
        report_dir=tmp / "report",
    )  # fmt: skip
    lines: list[str] = []
    result = train_images(cfg, now=NOW, registry=Registry(tmp / "reg"), log=lines.append)
    return cfg, result, tmp, lines


def test_two_stages_then_baselines_on_the_same_split(run) -> None:  # type: ignore[no-untyped-def]
    _, result, _, lines = run
    rep = result.report
    assert [s.name for s in rep.model.stages] == ["head", "fine-tune"]
    head, fine = rep.model.stages
    assert head.trainable_params == 4 * 1280 + 4 < fine.trainable_params and fine.lr < head.lr
    assert [b.name for b in rep.baselines] == ["scratch", "pixels"]
    assert all(b.metrics.rows == rep.model.metrics.rows == sum(rep.data.val_counts) for b in rep.baselines)
    assert rep.data.val_counts == (2, 2, 2, 2) and rep.data.train_counts == (10, 10, 10, 10)
    m = rep.model.metrics
    assert 0 <= m.accuracy <= 1 and len(m.per_class) == 4 and np.sum(m.confusion) == m.rows
    assert any(line.startswith("head      epoch  1") for line in lines)
    assert rep.model.metrics.accuracy >= 0.75  # pretrained features separate shapes after two head epochs


def test_export_parity_registry_and_report(run) -> None:  # type: ignore[no-untyped-def]
    _, result, tmp, _ = run
    rep = result.report
    assert rep.export is not None and rep.export.parity.max_abs_diff <= 1e-4 and rep.export.parity.rows == 8
    assert rep.export.inputs[0].shape == (-1, 3, 64, 64) and rep.export.outputs[0].name == "probabilities"
    assert rep.latency is not None and rep.latency.onnx_ms_p50 > 0
    man = Registry(tmp / "reg").manifest("shapes")
    assert man.version == 1 and man.labels == ("circle", "square", "stripes", "triangle")
    assert man.image is not None and (man.image.height, man.image.width) == (64, 64) and man.image.std == (128.0,) * 3
    assert man.metrics["val_accuracy"] == rep.model.metrics.accuracy and "baseline_scratch_val_f1_macro" in man.metrics
    assert read_json(result.paths["json"]).model.metrics == rep.model.metrics
    html = result.paths["html"].read_text()
    assert html.count("<svg") == 4 and "Loss per epoch" in html and "Fine-tuned vs baselines" in html
    assert json.loads(result.paths["json"].read_text())["preprocess"]["mean"] == [127.0, 127.0, 127.0]
    assert "parity max |Δ p|" in summary_table(rep) and "(live)" in summary_table(rep)


def test_served_model_answers_what_training_computed(run, shapes: ShapeSet) -> None:  # type: ignore[no-untyped-def]
    _, result, tmp, _ = run
    pool = ImageClassifiers(ClassifyConfig(registry_root=tmp / "reg"))
    spec = pool.get("shapes").spec
    for path in shapes.files[::7]:
        data = path.read_bytes()
        served = pool.classify("shapes", data)
        with torch.no_grad():
            ref = torch.softmax(result.net(torch.from_numpy(to_input(decode_image(data, spec), spec))), 1)[0].numpy()
        got = np.array([served.probabilities[c] for c in result.report.data.classes])
        assert np.abs(got - ref).max() <= 1e-4 and served.label == result.report.data.classes[int(ref.argmax())]
