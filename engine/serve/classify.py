"""`POST /v1/classify/{model}`: one image in, its label and class probabilities out (ONNX Runtime only).

    POST /v1/classify/{model}[?version=N]
        body   the image bytes with an image/* (or application/octet-stream) content type,
               or a multipart/form-data upload (its first file part)
        200    {"model", "version", "label", "probabilities": {label: p}, "ms"}
        400    an empty body, a truncated or corrupt image, a form without a file part
        404    no such model or version, or the model is not an image classifier
        413    a body over `max_bytes`, or an image over `max_pixels` pixels
        415    not an image (or a format that is not decoded here), or another content type
        503    the artifact does not match its manifest's sha256 (retrain or restore it)

The model is the live version in the registry (else the latest), re-read every `refresh_s`, so a promote
or rollback is picked up without a restart; at most `max_models` sessions stay open (least recently used
ones are closed).

`decode_image` and `to_input` are the one definition of image preprocessing: training imports them, so
the network is validated (and its ONNX parity checked) on exactly what the server feeds it. The top of
this module needs only numpy and msgspec; Pillow, onnxruntime and Litestar are imported where used, so
training does not need the server's libraries and the server never imports torch.

No `from __future__ import annotations` here: the route handler is built inside `classify_router`, and
Litestar reads its annotations as objects.
"""

import io
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from engine.errors import TidegateError
from engine.registry import ImageInput, Manifest, Registry, RegistryError, UnknownModelError

if TYPE_CHECKING:
    from litestar import Litestar, Router

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
_FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")


class ImageError(TidegateError):
    """An image that cannot be used: `reason` is a code (empty, too_large, not_an_image, corrupt), `status` HTTP."""

    def __init__(self, message: str, *, reason: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


class ClassifyError(TidegateError):
    """A request the server cannot answer with a classification; `status` is the HTTP status to send."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def decode_image(data: bytes, spec: ImageInput, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image file bytes → (height, width, channels) uint8, converted and resized as `spec` says.

    EXIF orientation is applied; multi-frame images give their first frame; the whole image is resized
    (aspect ratio is not kept, nothing is cropped). ImageError when the bytes are not a usable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        msg = "the image is empty (0 bytes): send the image file's bytes"
        raise ImageError(msg, reason="empty", status=400)
    if spec.resize not in _FILTERS:
        msg = f"the manifest asks for resize filter {spec.resize!r}; known: {', '.join(_FILTERS)}"
        raise ImageError(msg, reason="bad_spec", status=503)
    try:
        with warnings.catch_warnings():  # the size limit below is ours; Pillow's bomb warning would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        msg = f"not an image that can be decoded here (formats: {', '.join(FORMATS)})"
        raise ImageError(msg, reason="not_an_image", status=415) from exc
    except Image.DecompressionBombError as exc:
        msg = f"the image is too large (limit {max_pixels:,} pixels)"
        raise ImageError(msg, reason="too_large", status=413) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # a header cut short or broken
        raise _corrupt(None, exc) from exc
    width, height = im.size
    if width * height > max_pixels:
        msg = f"the image is {width}×{height} = {width * height:,} pixels (limit {max_pixels:,}): send a smaller one"
        raise ImageError(msg, reason="too_large", status=413)
    try:
        im.load()
        im = ImageOps.exif_transpose(im).convert(spec.color)
        im = im.resize((spec.width, spec.height), getattr(Image.Resampling, spec.resize.upper()))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's ways of saying "truncated or corrupt"
        raise _corrupt(im.format, exc) from exc
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _corrupt(fmt: str | None, exc: BaseException) -> ImageError:
    first = (str(exc).splitlines() or [""])[0][:120]
    msg = f"the {fmt + ' ' if fmt else ''}image cannot be decoded ({first}): it is truncated or corrupt"
    return ImageError(msg, reason="corrupt", status=400)


def to_input(pixels: np.ndarray, spec: ImageInput) -> np.ndarray:
    """(N, H, W, C) or (H, W, C) uint8 pixels → the model input: float32 `(pixel - mean) / std` in `spec.layout`."""
    x = pixels.astype(np.float32)
    if x.ndim == 3:
        x = x[None]
    x = (x - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if spec.layout == "NCHW" else x


class Classification(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    version: int
    label: str
    probabilities: dict[str, float]
    ms: float  # decode + preprocess + inference, in the server


@dataclass(frozen=True, slots=True)
class ClassifyConfig:
    registry_root: Path
    max_bytes: int = MAX_BYTES  # request body limit
    max_pixels: int = MAX_PIXELS  # decoded image limit (decompression bombs)
    threads: int = 1  # ONNX Runtime intra-op threads per session
    max_models: int = 8  # open sessions kept; the least recently used is closed
    refresh_s: float = 1.0  # how often a model's live version is re-read from the registry


@dataclass(frozen=True, slots=True)
class LoadedModel:
    manifest: Manifest
    spec: ImageInput
    session: Any  # onnxruntime.InferenceSession
    input_name: str

    def classify(self, data: bytes, *, max_pixels: int) -> tuple[str, dict[str, float]]:
        x = to_input(decode_image(data, self.spec, max_pixels=max_pixels), self.spec)
        proba = np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float64)[0]
        labels = self.manifest.labels
        return labels[int(proba.argmax())], {lab: float(p) for lab, p in zip(labels, proba, strict=True)}


class ImageClassifiers:
    """The open ONNX Runtime sessions of image models, by (name, version), bounded; thread-safe."""

    def __init__(self, cfg: ClassifyConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.registry = Registry(cfg.registry_root)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._resolved: dict[str, tuple[int, float]] = {}  # name -> (version, when it was read)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The session for `name` (its live version unless `version`); ClassifyError 404/503 if there is none."""
        with self._lock:
            try:
                key = (name, version if version is not None else self._live(name))
                model = self._sessions.get(key)
                if model is None:
                    model = self._load(*key)
                    self._sessions[key] = model
                    while len(self._sessions) > self.cfg.max_models:
                        (old, _), _ = self._sessions.popitem(last=False)
                        if all(n != old for n, _ in self._sessions):
                            self._resolved.pop(old, None)
                self._sessions.move_to_end(key)
                return model
            except UnknownModelError as exc:
                raise ClassifyError(str(exc), 404) from exc
            except RegistryError as exc:
                raise ClassifyError(str(exc), 503) from exc

    def classify(self, name: str, data: bytes, version: int | None = None) -> Classification:
        t0 = time.perf_counter()
        model = self.get(name, version)
        try:
            label, proba = model.classify(data, max_pixels=self.cfg.max_pixels)
        except ImageError as exc:
            raise ClassifyError(exc.message, exc.status) from exc
        ms = (time.perf_counter() - t0) * 1000
        return Classification(model=name, version=model.manifest.version, label=label, probabilities=proba, ms=ms)

    def _live(self, name: str) -> int:
        now = self._clock()
        seen = self._resolved.get(name)
        if seen is not None and now - seen[1] < self.cfg.refresh_s:
            return seen[0]
        version = self.registry.manifest(name).version  # the live version, else the latest
        self._resolved[name] = (version, now)
        return version

    def _load(self, name: str, version: int) -> LoadedModel:
        import onnxruntime as ort

        man, path = self.registry.artifact(name, version)
        if man.kind != "onnx" or man.image is None:
            msg = f"model {name!r} version {man.version} is not an image classifier; use /predict for table models"
            raise UnknownModelError(msg)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.cfg.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return LoadedModel(manifest=man, spec=man.image, session=session, input_name=session.get_inputs()[0].name)


def classify_router(cfg: ClassifyConfig, classifiers: ImageClassifiers | None = None) -> "Router":
    """A Litestar `Router` serving `POST /v1/classify/{model}` (mount it on any app)."""
    import anyio.to_thread
    from litestar import Request, Router, post
    from litestar.datastructures import UploadFile
    from litestar.exceptions import HTTPException
    from litestar.params import FromPath, FromQuery

    pool = classifiers or ImageClassifiers(cfg)

    async def image_bytes(request: Request) -> bytes:
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not files:
                msg = "the form has no file part: upload the image as a file field (curl -F image=@photo.jpg)"
                raise HTTPException(status_code=400, detail=msg)
            data = await files[0].read()
        elif not ctype or ctype.startswith(("image/", "application/octet-stream")):
            data = await request.body()
        else:
            msg = f"content type {ctype!r}: send the image bytes as image/* or a multipart/form-data upload"
            raise HTTPException(status_code=415, detail=msg)
        if len(data) > cfg.max_bytes:
            msg = f"the image is {len(data):,} bytes; the limit is {cfg.max_bytes:,}"
            raise HTTPException(status_code=413, detail=msg)
        return data

    @post("/classify/{model:str}", status_code=200)
    async def classify(model: FromPath[str], request: Request, version: FromQuery[int | None] = None) -> Classification:
        data = await image_bytes(request)
        try:
            return await anyio.to_thread.run_sync(pool.classify, model, data, version)
        except ClassifyError as exc:
            raise HTTPException(status_code=exc.status, detail=exc.message) from exc

    return Router(path="/v1", route_handlers=[classify], request_max_body_size=cfg.max_bytes)


def create_classify_app(registry_root: Path, *, config: ClassifyConfig | None = None) -> "Litestar":
    """A standalone Litestar app with only the classify route (tests, and gateways that serve images only)."""
    from litestar import Litestar

    cfg = config or ClassifyConfig(registry_root=Path(registry_root))
    return Litestar(route_handlers=[classify_router(cfg)], request_max_body_size=cfg.max_bytes)
