"""The image report as one self-contained HTML page: tables, learning curves, confusion matrices (inline SVG).

The page style, the table helper and the figure helpers are the tabular report's (`models.training`).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from models.images.report import ImageReport, RunResult, epochs_summary
from models.training.plots import _figure, _svg, confusion
from models.training.report_html import _CSS, _PAGE, _table


def figures(report: ImageReport) -> dict[str, str]:
    out = {"curves": curves([r for r in report.runs() if r.stages])}
    for run in report.runs():
        out[f"confusion:{run.name}"] = confusion(run.metrics.confusion, report.data.classes, f"{run.name} (validation)")
    return out


def curves(runs: list[RunResult]) -> str:
    """Loss and accuracy per epoch (training dashed, validation solid); a dotted line where a new stage starts."""
    with _figure(2, 5.0) as (fig, (loss_ax, acc_ax)):
        for k, run in enumerate(runs):
            colour = f"C{k}"
            epochs = [e for s in run.stages for e in s.epochs]
            x = list(range(1, len(epochs) + 1))
            loss_ax.plot(x, [e.train_loss for e in epochs], ls="--", c=colour, lw=1, label=f"{run.name} train")
            loss_ax.plot(x, [e.val_loss for e in epochs], c=colour, marker=".", label=f"{run.name} validation")
            acc_ax.plot(x, [e.train_accuracy for e in epochs], ls="--", c=colour, lw=1)
            acc_ax.plot(x, [e.val_accuracy for e in epochs], c=colour, marker=".", label=run.name)
            edge = 0
            for s in run.stages[:-1]:
                edge += len(s.epochs)
                for ax in (loss_ax, acc_ax):
                    ax.axvline(edge + 0.5, ls=":", c=colour, lw=0.8)
        loss_ax.set(title="Loss per epoch", xlabel="epoch", ylabel="cross-entropy")
        acc_ax.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        loss_ax.legend(fontsize=7)
        acc_ax.legend(fontsize=7, loc="lower right")
        return _svg(fig)


def render(report: ImageReport, figs: dict[str, str]) -> str:
    r, d = report, report.data
    out = [
        f"<h1>tidegate train-images · {escape(r.name)}</h1>",
        f"<p>{escape(d.source)} · {d.images:,} images in {len(d.classes)} classes · {escape(r.backbone)} at "
        f"{r.preprocess.width}×{r.preprocess.height} · device {escape(r.device)} · seed {r.seed} · "
        f"{r.created_at.isoformat(timespec='seconds')}</p>",
        "<h2>Data</h2>",
        _table(
            ["class", "images", "train", "validation"],
            [[c, n, t, v] for c, n, t, v in zip(d.classes, d.counts, d.train_counts, d.val_counts, strict=True)],
        ),
        f"<p><small>Stratified split; preprocessing: {escape(r.preprocess.color)}, whole image resized "
        f"({escape(r.preprocess.resize)}) to {r.preprocess.width}×{r.preprocess.height}, (pixel − "
        f"{r.preprocess.mean[0]:g}) / {r.preprocess.std[0]:g}. Augmentation (training split only): "
        f"{'on' if r.options.get('augment') else 'off'}"
        f"{', with horizontal flips' if r.options.get('augment') and r.options.get('flip') else ''}.</small></p>",
    ]
    if d.skipped:
        out.append(f"<p class=bad>{len(d.skipped)} files skipped:</p>")
        out.append(_table(["file", "reason", "message"], [[s.path, s.reason, s.message] for s in d.skipped]))
    out += [
        "<h2>Fine-tuned vs baselines (validation split)</h2>",
        _table(
            ["run", "what", "accuracy", "precision (macro)", "recall (macro)", "F1 (macro)", "log loss", "s", "epochs"],
            [
                [
                    run.name,
                    run.description,
                    run.metrics.accuracy,
                    run.metrics.precision_macro,
                    run.metrics.recall_macro,
                    run.metrics.f1_macro,
                    run.metrics.log_loss,
                    f"{run.seconds:.1f}",
                    epochs_summary(run),
                ]
                for run in r.runs()
            ],
            ["chosen"] + [""] * len(r.baselines),
        ),
        '<div class="figs">' + figs.get("curves", "") + "</div>",
        "<h2>Per class</h2>",
    ]
    for run in r.runs():
        out.append(f"<p><b>{escape(run.name)}</b></p>")
        out.append(
            _table(
                ["class", "precision", "recall", "F1", "support"],
                [[p.label, p.precision, p.recall, p.f1, p.support] for p in run.metrics.per_class],
            )
        )
    out.append('<div class="figs">' + "".join(figs.get(f"confusion:{run.name}", "") for run in r.runs()) + "</div>")
    out += _stages(r)
    out += _export(r)
    if r.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in r.notes) + "</ul>")
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items())
    versions = ", ".join(f"{k} {v}" for k, v in r.versions.items())
    out.append(
        f"<p><small>Timings: {escape(timing)}. {escape(versions)}. Data fingerprint {d.fingerprint[:16]}….</small></p>"
    )
    return _PAGE.format(title=escape(r.name), css=_CSS, body="\n".join(out))


def _stages(r: ImageReport) -> list[str]:
    rows: list[list[object]] = []
    for run in r.runs():
        for s in run.stages:
            best = s.best
            rows.append(
                [
                    run.name,
                    s.name,
                    f"{s.lr:g}",
                    f"{s.trainable_params:,}",
                    f"{len(s.epochs)}/{s.max_epochs}",
                    s.best_epoch,
                    best.val_loss,
                    best.val_accuracy,
                    f"{s.seconds:.1f}",
                    f"{s.seconds / max(1, len(s.epochs)):.2f}",
                ]
            )
    head = ["run", "stage", "lr", "trainable params", "epochs", "best", "val loss", "val acc", "s", "s/epoch"]
    return ["<h2>Training stages (early stopping on validation loss)</h2>", _table(head, rows)]


def _export(r: ImageReport) -> list[str]:
    out = []
    if r.export:
        e, p = r.export, r.export.parity
        out += [
            "<h2>ONNX export</h2>",
            f"<p>{e.size_bytes:,} bytes, opset {e.opset}, input {escape(e.inputs[0].name)} "
            f"{escape(str(e.inputs[0].shape))}, output {escape(e.outputs[0].name)}. Parity with torch on {p.rows} "
            f"validation images: max |Δ probability| = {p.max_abs_diff:.2e} (tolerance {p.tolerance:.0e}), "
            f"{p.label_mismatches} label mismatches.</p>",
        ]
    if r.latency:
        lat = r.latency
        out.append(
            f"<p>Single-image CPU latency ({lat.threads} thread, {lat.runs} runs): ONNX Runtime "
            f"{lat.onnx_ms_p50:.2f} ms (p99 {lat.onnx_ms_p99:.2f}), torch {lat.torch_ms_p50:.2f} ms "
            f"(p99 {lat.torch_ms_p99:.2f}).</p>"
        )
    if r.registry:
        g = r.registry
        state = "live" if g.live else "not promoted"
        out.append(f"<h2>Registry</h2><p>{escape(f'{g.root}/{g.name}/{g.version} ({state})')}</p>")
    return out


def write_html(report: ImageReport, figs: dict[str, str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, figs), encoding="utf-8")
    return path
