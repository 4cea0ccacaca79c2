"""`tidegate train-images` as a user runs it, then `POST /v1/classify/{model}` on a real HTTP server (uvicorn on
127.0.0.1, ONNX Runtime): raw bytes and multipart uploads, every bad-image answer, hot swap on promote, and
no torch on the serving path."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from engine.registry import Registry
from engine.samples.shapes import write_shapes
from engine.serve.classify import decode_image, to_input

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SERVER = """
import sys
from pathlib import Path
import uvicorn
from engine.serve.classify import ClassifyConfig, create_classify_app
cfg = ClassifyConfig(registry_root=Path(sys.argv[1]), max_bytes=200_000, max_pixels=4_000_000, refresh_s=0.2)
uvicorn.run(create_classify_app(cfg.registry_root, config=cfg), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


def tg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=280, env=ENV
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("classify")
    write_shapes(tmp / "data", per_class=8, size=64, seed=5)
    out = tg(
        "train-images", "--data", "data", "--name", "shapes", "--epochs", "1", "--fine-tune-blocks", "1",
        "--image-size", "64", "--baselines", "none", "--registry", "reg", "--device", "cpu", "--json", cwd=tmp,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return tmp, json.loads(out.stdout)


@pytest.fixture(scope="module")
def server(trained: tuple[Path, dict]) -> Iterator[str]:  # type: ignore[type-arg]
    tmp, _ = trained
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp / "reg"), str(port)], env=ENV, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the classify server did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_trains_exports_and_registers(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    tmp, report = trained
    assert report["export"]["parity"]["max_abs_diff"] <= 1e-4 and report["baselines"] == []
    assert [s["name"] for s in report["model"]["stages"]] == ["head", "fine-tune"]
    assert report["registry"]["version"] == 1 and report["registry"]["live"] is True
    assert (tmp / "reports" / "shapes" / "v1" / "report.html").is_file()


def test_classify_raw_bytes_and_multipart(server: str, trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    tmp, _ = trained
    man, path = Registry(tmp / "reg").artifact("shapes")
    assert man.image is not None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = tmp / "data" / "circle" / sorted(os.listdir(tmp / "data" / "circle"))[0]
    data = image.read_bytes()
    ctype = "image/png" if image.suffix == ".png" else "image/jpeg"
    raw = httpx.post(f"{server}/v1/classify/shapes", content=data, headers={"content-type": ctype}, timeout=30)
    assert raw.status_code == 200, raw.text
    body = raw.json()
    ref = sess.run(None, {"image": to_input(decode_image(data, man.image), man.image)})[0][0]
    assert body["model"] == "shapes" and body["version"] == 1 and set(body["probabilities"]) == set(man.labels)
    assert np.allclose([body["probabilities"][lab] for lab in man.labels], ref, atol=1e-6)
    assert body["label"] == man.labels[int(ref.argmax())] and abs(sum(body["probabilities"].values()) - 1) < 1e-5
    form = httpx.post(f"{server}/v1/classify/shapes", files={"image": (image.name, data, ctype)}, timeout=30)
    assert form.status_code == 200 and form.json()["probabilities"] == body["probabilities"]


def _png(size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("path", "content", "ctype", "status", "says"),
    [
        ("shapes", b"", "image/png", 400, "empty"),
        ("shapes", b"GIF89a but not really", "image/gif", 415, "not an image"),
        ("shapes", b"hello, I am text", "image/png", 415, "not an image"),
        ("shapes", b"{}", "application/json", 415, "content type"),
        ("shapes", _png((64, 64))[:-30], "image/png", 400, "truncated or corrupt"),
        ("shapes", _png((2500, 2000)), "image/png", 413, "pixels"),
        ("shapes", b"\0" * 300_000, "image/png", 413, ""),
        ("nope", _png((8, 8)), "image/png", 404, "no model named 'nope'"),
        ("bad name!", _png((8, 8)), "image/png", 404, "bad model name"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    server: str, path: str, content: bytes, ctype: str, status: int, says: str
) -> None:
    r = httpx.post(f"{server}/v1/classify/{path}", content=content, headers={"content-type": ctype}, timeout=30)
    assert r.status_code == status, r.text
    assert says in r.text


def test_multipart_without_a_file_is_400(server: str) -> None:
    r = httpx.post(f"{server}/v1/classify/shapes", data={"note": "no file"}, files={}, timeout=30)
    assert r.status_code in (400, 415)
    r = httpx.post(f"{server}/v1/classify/shapes", files={"x": ("a.txt", b"text", "text/plain")}, timeout=30)
    assert r.status_code == 415 and "not an image" in r.text


def test_promote_is_picked_up_without_a_restart(server: str, trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    tmp, _ = trained
    reg = Registry(tmp / "reg")
    man, path = reg.artifact("shapes", 1)
    v2 = reg.register(man, path.read_bytes(), promote=True)  # the same graph as a new live version
    data = _png((40, 30))
    deadline = time.monotonic() + 10
    while httpx.post(f"{server}/v1/classify/shapes", content=data, timeout=30).json()["version"] != v2.version:
        assert time.monotonic() < deadline, "the new live version was not picked up"
        time.sleep(0.1)
    reg.rollback("shapes", dt.datetime.now(dt.UTC))
    deadline = time.monotonic() + 10
    while httpx.post(f"{server}/v1/classify/shapes", content=data, timeout=30).json()["version"] != 1:
        assert time.monotonic() < deadline, "the rollback was not picked up"
        time.sleep(0.1)
    pinned = httpx.post(f"{server}/v1/classify/shapes?version=2", content=data, timeout=30)
    assert pinned.status_code == 200 and pinned.json()["version"] == 2


def test_serving_path_never_imports_torch(trained: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    tmp, _ = trained
    image = next((tmp / "data" / "square").iterdir())
    code = (
        "import sys; from pathlib import Path;"
        "from engine.serve.classify import ClassifyConfig, ImageClassifiers, create_classify_app;"
        f"create_classify_app(Path({str(tmp / 'reg')!r}));"
        f"c = ImageClassifiers(ClassifyConfig(registry_root=Path({str(tmp / 'reg')!r})));"
        f"print(c.classify('shapes', Path({str(image)!r}).read_bytes()).label);"
        "heavy = sorted({'torch', 'kornia', 'sklearn', 'polars', 'duckdb', 'river', 'bytewax'} & set(sys.modules));"
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in {"circle", "square", "stripes", "triangle"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--data", "missing"], 2, "not a folder"),
        (["--data", "data", "--device", "cuda"], 2, "--device cuda"),
        (["--data", "data", "--image-size", "8"], 2, "--image-size 8"),
        (["--data", "data", "--baselines", "knn"], 2, "unknown baseline 'knn'"),
    ],
)
def test_cli_usage_errors(trained: tuple[Path, dict], args: list[str], code: int, message: str) -> None:  # type: ignore[type-arg]
    import torch

    tmp, _ = trained
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    out = tg("train-images", "--name", "x", *args, cwd=tmp)
    assert out.returncode == code and message in out.stderr and "Traceback" not in out.stderr, out.stderr
