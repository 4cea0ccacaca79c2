"""ONNX export of the whole fitted pipeline as one graph, and the parity check that gates it.

Inputs: one per feature column, shape (-1, 1): float32 for numeric columns (NaN = missing) and string for
categorical ones ("" = missing). Outputs: `label` and `probabilities` (classification, no ZipMap) or
`variable` (regression). skl2onnx sanitizes input names; `TensorSpec.column` maps them back to columns.

Parity: onnxruntime vs scikit-learn on the test split; the largest absolute difference of probabilities
must be ≤ 1e-4 (regression: ≤ 1e-4 × max(1, std of the target), since float32 carries ~7 digits). A failed
conversion or comparison names the pipeline step at fault.
"""

from __future__ import annotations

import msgspec
import numpy as np
import onnxruntime as ort
import polars as pl
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from engine.registry import TensorSpec
from models.training.columns import ColumnPlan, features
from models.training.config import PcaOption
from models.training.errors import ExportError
from models.training.families import Family
from models.training.features import build_pipeline

TOLERANCE = 1e-4
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(int64)": "int64",
    "tensor(string)": "string",
    "tensor(double)": "float64",
}


class Parity(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    output: str  # "probabilities" or "variable"
    max_abs_diff: float
    tolerance: float
    label_mismatches: int = 0
    passed: bool = True


def convert(model: Pipeline, plans: list[ColumnPlan]) -> bytes:
    """The fitted pipeline (or a prefix of it) as ONNX bytes; ExportError naming the step that failed."""
    try:
        return _to_onnx(model, plans)
    except Exception as exc:
        failing = next(
            (i - 1 for i in range(1, len(model.steps)) if not _converts(Pipeline(model.steps[:i]), plans)),
            len(model.steps) - 1,
        )
        raise ExportError(_step_message(model, failing, "did not convert to ONNX", exc)) from exc


def _to_onnx(model: Pipeline, plans: list[ColumnPlan]) -> bytes:
    types = [
        (p.name, FloatTensorType([None, 1]) if p.kind == "numeric" else StringTensorType([None, 1]))
        for p in features(plans)
    ]
    last = model.steps[-1][1]
    options = {id(last): {"zipmap": False}} if is_classifier(last) else None
    return to_onnx(model, initial_types=types, options=options, target_opset=TARGET_OPSET).SerializeToString()


def _converts(model: Pipeline, plans: list[ColumnPlan]) -> bool:
    try:
        _to_onnx(model, plans)
    except Exception:  # noqa: BLE001 - any failure means "this prefix does not convert"
        return False
    return True


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def feeds(sess: ort.InferenceSession, X: pl.DataFrame, plans: list[ColumnPlan]) -> dict[str, np.ndarray]:
    """The prepared frame as ONNX inputs (the session's input order is the feature order)."""
    out = {}
    for inp, p in zip(sess.get_inputs(), features(plans), strict=True):
        col = X[p.name]
        arr = col.to_numpy().astype(np.float32) if p.kind == "numeric" else np.asarray(col.to_list(), dtype=object)
        out[inp.name] = arr.reshape(-1, 1)
    return out


def check_parity(
    onnx_bytes: bytes, model: Pipeline, X: pl.DataFrame, plans: list[ColumnPlan], *, tolerance: float = TOLERANCE
) -> Parity:
    """Compare ONNX Runtime with scikit-learn on X; ExportError naming the step when they disagree."""
    sess = session(onnx_bytes)
    outputs = sess.run(None, feeds(sess, X, plans))
    if is_classifier(model):
        ref, got = model.predict_proba(X), outputs[1]
        mismatches = int((np.asarray(outputs[0]).ravel() != ref.argmax(axis=1)).sum())
        name = "probabilities"
    else:
        ref, got, mismatches, name = model.predict(X), outputs[0].ravel(), 0, "variable"
    diff = float(np.abs(np.asarray(got, dtype=np.float64) - ref).max()) if len(X) else 0.0
    parity = Parity(rows=len(X), output=name, max_abs_diff=diff, tolerance=tolerance, label_mismatches=mismatches)
    if diff > tolerance:
        step = _diverging_step(model, X, plans, tolerance)
        what = f"ONNX and scikit-learn disagree by {diff:.2e} (> {tolerance:.0e}) on {len(X)} test rows"
        raise ExportError(_step_message(model, step, what, None))
    return parity


def io_specs(onnx_bytes: bytes, plans: list[ColumnPlan]) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (with the column each is fed from) and outputs, for the manifest."""
    sess = session(onnx_bytes)
    inputs = tuple(
        TensorSpec(
            name=i.name,
            dtype=_DTYPES.get(i.type, i.type),
            shape=(-1, 1),
            missing="NaN" if p.kind == "numeric" else "",
            column=p.name,
        )
        for i, p in zip(sess.get_inputs(), features(plans), strict=True)
    )
    outputs = tuple(
        TensorSpec(name=o.name, dtype=_DTYPES.get(o.type, o.type), shape=tuple(_dim(d) for d in o.shape))
        for o in sess.get_outputs()
    )
    return inputs, outputs


def _dim(d: object) -> int:
    return d if isinstance(d, int) else -1


def _diverging_step(model: Pipeline, X: pl.DataFrame, plans: list[ColumnPlan], tolerance: float) -> int:
    """The first pipeline step whose output already differs between ONNX and scikit-learn."""
    for i in range(1, len(model.steps)):
        prefix = Pipeline(model.steps[:i])
        sess = session(convert(prefix, plans))
        got = np.asarray(sess.run(None, feeds(sess, X, plans))[0], dtype=np.float64)
        ref = np.asarray(prefix.transform(X), dtype=np.float64)
        scale = max(1.0, float(np.abs(ref).max()))
        if got.shape != ref.shape or float(np.abs(got - ref).max()) > tolerance * scale:
            return i - 1
    return len(model.steps) - 1


def _step_message(model: Pipeline, step: int, what: str, exc: BaseException | None) -> str:
    name, est = model.steps[step]
    msg = f"pipeline step {name!r} ({type(est).__name__}): {what}"
    if exc is not None:
        first = (str(exc).splitlines() or [""])[0][:160]
        msg += f" [{type(exc).__name__}: {first}]"
    return msg + "; " + _HINTS.get(name, _HINTS["model"])


_HINTS = {
    "pre": "a numeric column with a large magnitude and a small spread (an epoch timestamp?) loses precision in "
    "float32: turn it into a smaller quantity (e.g. an age in days) or drop it",
    "pca": "use --pca off",
    "model": "choose other --models (e.g. lr,rf,gb)",
}


def probe_family(family: Family, task: str) -> str | None:
    """None if this family's fitted pipeline converts to ONNX here, else why not (a tiny fit, milliseconds)."""
    rng = np.random.default_rng(0)
    n = 40
    X = pl.DataFrame({"x": rng.normal(size=n).astype(np.float32), "c": rng.choice(["a", "b"], n)})
    y = (X["x"].to_numpy() > 0).astype(np.int64) if task == "classification" else X["x"].to_numpy().astype(float)
    plans = [
        ColumnPlan(name="x", source_dtype="f32", kind="numeric"),
        ColumnPlan(name="c", source_dtype="str", kind="categorical", levels=("a", "b")),
    ]
    model = build_pipeline(plans, family, task, pca=PcaOption(), seed=0)
    est = model.steps[-1][1]
    size = "max_iter" if type(est).__name__.startswith("HistGradientBoosting") else "n_estimators"
    if size in est.get_params():
        est.set_params(**{size: 3})  # a few trees are enough to see whether it converts
    model.fit(X, y)
    try:
        _to_onnx(model, plans)
    except Exception as exc:  # noqa: BLE001 - any failure gates the family; the reason is reported
        first = (str(exc).splitlines() or [""])[0][:120]
        return f"skl2onnx cannot convert {type(est).__name__} here ({type(exc).__name__}: {first})"
    return None
