"""The report as one self-contained HTML page (tables + inline SVG figures; no scripts, no network)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from models.training.report import SHOWN, TrainReport

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 9px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.chosen{background:#eef6ee}.bad{color:#b00}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs svg{max-width:100%;height:auto}small{color:#666}
"""
_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>{title} · tidegate report</title>"
    "<style>{css}</style></head><body>{body}</body></html>\n"
)


def render(report: TrainReport, figures: dict[str, str]) -> str:
    sections = (_header, _columns, _validation, _candidates, _test, _online, _export, _footer)
    body = "\n".join(part for section in sections for part in section(report, figures))
    return _PAGE.format(title=escape(report.name), css=_CSS, body=body)


def write_html(report: TrainReport, figures: dict[str, str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, figures), encoding="utf-8")
    return path


def _table(head: list[str], rows: list[list[object]], classes: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(
            f'<td class="n">{v:.4f}</td>' if isinstance(v, float) else f"<td>{escape(str(v))}</td>" for v in row
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    return "\n".join([*out, "</table>"])


def _figs(figures: dict[str, str], *names: str) -> str:
    return '<div class="figs">' + "".join(figures.get(n, "") for n in names) + "</div>"


def _header(r: TrainReport, figures: dict[str, str]) -> list[str]:
    return [
        f"<h1>tidegate train · {escape(r.name)}</h1>",
        f"<p>{escape(r.data.source)} · {r.data.used_rows:,} rows · target <b>{escape(r.target.name)}</b> "
        f"({r.target.task}) · chosen <b>{escape(r.chosen)}</b> by CV mean {escape(r.primary_metric)} · seed {r.seed}"
        f" · {r.created_at.isoformat(timespec='seconds')}</p>",
    ]


def _columns(r: TrainReport, figures: dict[str, str]) -> list[str]:
    out = [
        "<h2>Columns (inferred types)</h2>",
        _table(
            ["column", "source type", "used as", "missing", "distinct", "note / reason"],
            [[c.name, c.source_dtype, c.kind, c.missing, c.distinct, c.reason] for c in r.data.columns],
        ),
    ]
    t = r.target
    if t.task == "classification":
        counts = ", ".join(f"{lab}: {n}" for lab, n in zip(t.labels, t.class_counts, strict=True))
        positive = f"; positive = {t.positive_label}" if t.positive_label else ""
        out.append(f"<p>Target classes: {escape(counts + positive)}</p>")
    if t.dropped_rows:
        out.append(f"<p>{t.dropped_rows} rows without a target value were left out.</p>")
    return out


def _validation(r: TrainReport, figures: dict[str, str]) -> list[str]:
    s = r.split
    out = [
        f"<h2>Validation</h2><p>Held-back test split: {s.test_rows:,} rows ({s.test_size:.0%}"
        f"{', stratified' if s.stratified else ''}); {s.cv} with {s.folds} folds on the other {s.train_rows:,}.</p>"
    ]
    if r.fold_balance:
        head = ["fold", "rows", "positive (or rarest class) rate", "overall", "deviation (pp)", "within ±1 pp"]
        rows: list[list[object]] = [
            [b.fold, b.rows, b.positive_rate, b.overall_rate, b.deviation_pp, "yes" if b.within_1pp else "no"]
            for b in r.fold_balance
        ]
        out.append(_table(head, rows))
    return out


def _candidates(r: TrainReport, figures: dict[str, str]) -> list[str]:
    names = list(r.candidates[0].mean)
    rows: list[list[object]] = [
        [c.family, c.estimator, *[f"{c.mean[m]:.4f} ± {c.std[m]:.4f}" for m in names], f"{c.fit_seconds:.2f}"]
        for c in r.candidates
    ]
    classes = ["chosen" if c.family == r.chosen else "" for c in r.candidates]
    out = ["<h2>Candidates (CV mean ± std)</h2>", _table(["family", "estimator", *names, "fit s"], rows, classes)]
    out += [f"<p class=bad>{escape(s.family)} skipped: {escape(s.reason)}</p>" for s in r.skipped]
    chosen = r.candidate(r.chosen)
    params = ", ".join(f"{k}={v}" for k, v in sorted(chosen.params.items()))
    out.append(f"<p>Chosen: <b>{escape(chosen.estimator)}</b> ({escape(params)})</p>")
    if chosen.search:
        s = chosen.search
        out.append(
            f"<p><small>{escape(s.method)}: {s.candidates} candidates scored by {escape(s.scoring)} on the same "
            f"folds (best {s.best_score:.4f}); that score is optimistic, the test split is the honest one.</small></p>"
        )
    out.append(_figs(figures, "folds"))
    return out


def _test(r: TrainReport, figures: dict[str, str]) -> list[str]:
    shown = SHOWN[r.target.task]
    first = "at 0.5 / argmax" if r.target.task == "classification" else "chosen model"
    rows: list[list[object]] = [[first, *[r.test.metrics.get(m, float("nan")) for m in shown]]]
    if r.test.metrics_at_threshold and r.threshold:
        at = r.test.metrics_at_threshold
        rows.append([f"at tuned threshold {r.threshold.value:.3f}", *[at.get(m, float("nan")) for m in shown]])
    out = [f"<h2>Test split ({r.test.rows:,} rows)</h2>", _table(["", *shown], rows)]
    if r.threshold:
        th = r.threshold
        out.append(
            f"<p><small>Threshold {th.value:.3f}: max F1 on out-of-fold predictions "
            f"({th.f1_at_value:.4f} vs {th.f1_at_half:.4f} at 0.5).</small></p>"
        )
    out.append(_figs(figures, "roc_pr", "confusion", "calibration", "residuals"))
    return out


def _online(r: TrainReport, figures: dict[str, str]) -> list[str]:
    if not r.online:
        return []
    o, cv, shown = r.online, r.candidate(r.chosen).mean, SHOWN[r.target.task]
    rows: list[list[object]] = [
        ["batch: CV mean", *[cv.get(m, float("nan")) for m in shown]],
        ["batch: test split", *[r.test.metrics.get(m, float("nan")) for m in shown]],
        ["online: progressive", *[o.metrics.get(m, float("nan")) for m in shown]],
    ]
    return [
        "<h2>Online counterpart (River)</h2>",
        f"<p>{escape(o.model)}, {escape(o.method)}: {o.rows:,} rows, {o.rows_per_s:,.0f} rows/s.</p>",
        _table(["", *shown], rows),
    ]


def _export(r: TrainReport, figures: dict[str, str]) -> list[str]:
    out = []
    if r.export:
        e, p = r.export, r.export.parity
        out += [
            "<h2>ONNX export</h2>",
            f"<p>The whole pipeline as one graph ({e.size_bytes:,} bytes, opset {escape(str(e.opset))}). Parity with "
            f"scikit-learn on {p.rows} test rows: max |Δ {escape(p.output)}| = {p.max_abs_diff:.2e} "
            f"(tolerance {p.tolerance:.0e}), {p.label_mismatches} label mismatches.</p>",
            _table(
                ["input", "dtype", "column", "missing as"],
                [[i.name, i.dtype, i.column or "", repr(i.missing)] for i in e.inputs],
            ),
        ]
    if r.registry:
        g = r.registry
        state = "live" if g.live else "not promoted"
        online = f"; online snapshot {g.online_name}/{g.online_version}" if g.online_name else ""
        out.append(f"<h2>Registry</h2><p>{escape(f'{g.root}/{g.name}/{g.version} ({state}){online}')}</p>")
    return out


def _footer(r: TrainReport, figures: dict[str, str]) -> list[str]:
    out = []
    if r.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in r.notes) + "</ul>")
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in r.timings.items())
    out.append(f"<p><small>Timings: {escape(timing)}. Data fingerprint {r.data.fingerprint[:16]}….</small></p>")
    return out
