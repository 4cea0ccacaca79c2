"""The models a server holds, loaded from the registry, and how they are swapped without dropping a request.

- `OnnxModel`: one version of a tabular ONNX model (an ORT session + how each input is fed).
- `RecModel`: one version of the recommender (arrays → `Scorer`).
- `ModelHost`: the live version of every served model. A swap loads and warms the new version off the event
  loop, then replaces one dict entry: requests already running keep the object they started with, new ones
  get the new version, so none fails. A failed load keeps the old version serving.

The host follows the registry's live history (promote/rollback from the CLI, another server or the admin
API) by polling `history.jsonl`'s size and mtime every `watch_interval_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import onnxruntime as ort

from engine.errors import TidegateError
from engine.registry import Manifest, Registry, RegistryError
from engine.registry.store import HISTORY
from engine.serve.instances import Instances
from engine.serve.logging import emit
from engine.serve.recarrays import RecArrays
from engine.serve.recommend import Scorer, ScoringParams


class Prediction(msgspec.Struct, frozen=True, omit_defaults=True):
    """Classifiers: `label` (the manifest's threshold applied to a binary model) and class `probabilities`;
    regressors: `value`."""

    label: str | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None


def tabular(man: Manifest) -> bool:
    """True for ONNX models fed from named columns (what /v1/predict serves; image models are not)."""
    return (
        man.kind == "onnx"
        and getattr(man, "image", None) is None
        and all(i.column and i.dtype in ("float32", "float64", "int64", "string") for i in man.inputs)
    )


class OnnxModel:
    """One loaded version; `predict` validates a batch of instances and runs it as one ONNX call."""

    def __init__(self, manifest: Manifest, path: Path, threads: int = 1) -> None:
        if not tabular(manifest):
            msg = f"{manifest.name} v{manifest.version} is not a tabular ONNX model; /v1/predict cannot serve it"
            raise TidegateError(msg)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.manifest = manifest
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.instances = Instances(manifest)
        self.classifier = manifest.task == "classification"
        self.labels = list(manifest.labels)
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = outputs[1] if self.classifier and len(outputs) > 1 else outputs[0]
        self._output = [self.output]
        self.positive = (
            self.labels.index(manifest.positive_label)
            if manifest.positive_label in self.labels and len(self.labels) == 2
            else None
        )
        self.threshold = manifest.threshold
        self._post = classes_post(self.labels, self.positive, self.threshold) if self.classifier else None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(self._output, feeds)[0])

    def predict(self, instances: list[dict[str, Any]]) -> list[Prediction]:
        """One prediction per instance given as a dict (as in JSON); BadInput naming the first wrong field."""
        return self.predict_rows(self.instances.rows(instances))

    def predict_rows(self, rows: list[Any]) -> list[Prediction]:
        """One prediction per decoded instance (`self.instances.decode`), as one ONNX call."""
        out = self.run(self.instances.feeds(rows))
        if not self.classifier:
            return [Prediction(value=v) for v in out.reshape(len(rows), -1)[:, 0].astype(float).tolist()]
        return self._post(out)  # type: ignore[misc]

    def warm_up(self) -> None:
        """One prediction on an all-missing row, so the first real request does not pay for lazy init."""
        self.predict([self.instances.blank])


class RecModel:
    """One loaded version of the recommender."""

    def __init__(self, manifest: Manifest, path: Path) -> None:
        self.manifest = manifest
        self.scorer = Scorer(RecArrays.load(path), ScoringParams.from_params(dict(manifest.params)))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def warm_up(self) -> None:
        self.scorer.recommend("", (), 10)


Loaded = OnnxModel | RecModel
# what loading a version can raise: registry/sha256 errors, bad files, ONNX Runtime's own exception classes
_ORT_ERRORS = tuple(
    v for v in vars(ort.capi.onnxruntime_pybind11_state).values() if isinstance(v, type) and issubclass(v, Exception)
)
_LOAD_ERRORS = (TidegateError, OSError, ValueError, RuntimeError, *_ORT_ERRORS)


_PY_ROWS = 16  # up to this many rows, predictions are post-processed in Python (same numbers)


def classes_post(
    labels: list[str], positive: int | None, threshold: float | None
) -> Callable[[np.ndarray], list[Prediction]]:
    """A classifier's predictions from its probability rows ([n, classes]): the manifest's threshold on the
    positive class of a binary model, else the most probable class (the first on a tie); probabilities
    rounded to 6 decimals. A few rows are done in plain Python (numpy's per-call cost dominates there), with
    a binary fast path; the results are the same either way (a property test checks it)."""
    thresholded = positive is not None and threshold is not None
    l0, l1 = [*labels, "", ""][:2]

    def first(a: float, b: float) -> bool:  # binary: is the label the first one?
        if not thresholded:
            return a >= b
        return a >= threshold if positive == 0 else b < threshold  # type: ignore[operator]

    def post(out: np.ndarray) -> list[Prediction]:
        if len(out) <= _PY_ROWS and len(labels) == 2:
            return [
                Prediction(
                    label=l0 if first(a, b) else l1,
                    probabilities={l0: round(a * 1e6) / 1e6, l1: round(b * 1e6) / 1e6},  # = numpy's round(6)
                )
                for a, b in out.tolist()
            ]
        if len(out) <= _PY_ROWS:
            rows = out.tolist()
            if thresholded:
                chosen = [positive if r[positive] >= threshold else 1 - positive for r in rows]  # type: ignore[index,operator]
            else:
                chosen = [r.index(max(r)) for r in rows]
            probs = [[round(x * 1e6) / 1e6 for x in r] for r in rows]
        else:
            p64 = out.astype(np.float64)
            if thresholded:
                chosen = np.where(p64[:, positive] >= threshold, positive, 1 - positive).tolist()  # type: ignore[operator]
            else:
                chosen = p64.argmax(axis=1).tolist()
            probs = p64.round(6).tolist()
        return [
            Prediction(label=labels[c], probabilities=dict(zip(labels, p, strict=True)))
            for c, p in zip(chosen, probs, strict=True)
        ]

    return post


class ModelHost:
    """The live version of each served model; `sync(name)` follows the registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        onnx_names: tuple[str, ...] = (),
        recommender: str = "",
        threads: int = 1,
        log: logging.Logger | None = None,
        on_swap: Callable[[str, int | None, int, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.threads = threads
        self.log = log or logging.getLogger("tidegate.serve")
        self.on_swap = on_swap
        discovered = onnx_names or tuple(n for n in registry.names() if self._is_tabular(n))
        self.onnx_names = discovered
        self.recommender_name = recommender if recommender and recommender in registry.names() else ""
        self.wanted = (*self.onnx_names, *((self.recommender_name,) if self.recommender_name else ()))
        self.onnx: dict[str, OnnxModel] = {}
        self.recommender: RecModel | None = None
        self._stamps: dict[str, tuple[int, int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _is_tabular(self, name: str) -> bool:
        try:
            return tabular(self.registry.manifest(name))
        except RegistryError:
            return False

    @property
    def ready(self) -> bool:
        return all(self.loaded(n) is not None for n in self.wanted)

    def missing(self) -> list[str]:
        return [n for n in self.wanted if self.loaded(n) is None]

    def loaded(self, name: str) -> Loaded | None:
        if name == self.recommender_name:
            return self.recommender
        return self.onnx.get(name)

    def _load(self, name: str) -> Loaded:
        """Read, verify (sha256) and warm up the live version of `name` (blocking: call it in a thread)."""
        man, path = self.registry.artifact(name)
        model: Loaded = RecModel(man, path) if name == self.recommender_name else OnnxModel(man, path, self.threads)
        model.warm_up()
        return model

    def _install(self, model: Loaded) -> None:
        if isinstance(model, RecModel):
            self.recommender = model
        else:
            self.onnx = {**self.onnx, model.name: model}  # a new dict: readers never see a half-made one

    def load_all(self) -> None:
        """Load every wanted model now (at start); a model that fails is logged and retried by the watcher."""
        for name in self.wanted:
            self._stamps[name] = self._stamp(name)
            t0 = time.perf_counter()
            try:
                model = self._load(name)
            except _LOAD_ERRORS as exc:
                self._failed(name, None, exc)
                continue
            self._installed(name, None, model, t0)

    def _installed(self, name: str, before: Loaded | None, model: Loaded, t0: float) -> None:
        self._install(model)
        previous = before.version if before else None
        ms = round((time.perf_counter() - t0) * 1000, 2)
        emit(self.log, "model_loaded", model=name, version=model.version, previous=previous, load_ms=ms)
        if self.on_swap:
            self.on_swap(name, previous, model.version, "ok")

    def _failed(self, name: str, before: Loaded | None, exc: Exception) -> None:
        serving = before.version if before else None
        emit(self.log, "model_load_failed", logging.ERROR, model=name, serving=serving, error=str(exc))
        if self.on_swap:
            self.on_swap(name, serving, -1, "failed")

    def _stamp(self, name: str) -> tuple[int, int]:
        try:
            st = (self.registry.root / name / HISTORY).stat()
        except OSError:
            return (0, 0)
        return (st.st_size, st.st_mtime_ns)

    async def sync(self, name: str, *, force: bool = False) -> Loaded | None:
        """Load the registry's live version of `name` if it is not the one serving; return what serves now."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            stamp = self._stamp(name)
            current = self.loaded(name)
            if not force and current is not None and stamp == self._stamps.get(name):
                return current
            self._stamps[name] = stamp
            try:
                want = self.registry.manifest(name).version
            except RegistryError as exc:
                emit(self.log, "registry_read_failed", logging.ERROR, model=name, error=str(exc))
                return current
            if current is not None and current.version == want:
                return current
            t0 = time.perf_counter()
            try:
                model = await asyncio.get_running_loop().run_in_executor(None, self._load, name)
            except _LOAD_ERRORS as exc:
                self._failed(name, current, exc)
                return current
            self._installed(name, current, model, t0)
            return model

    async def watch(self, interval_s: float) -> None:
        """Follow the registry until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            for name in self.wanted:
                await self.sync(name)
