"""Single-image CPU latency of the exported graph (ONNX Runtime) and of the same network in torch (eager).

Both on one thread, on the same prepared input, after warm-up; medians and p99 in milliseconds. The
figure that matters on a gateway is ONNX Runtime's; torch is the reference measured in the same run.
"""

from __future__ import annotations

import copy
import time

import msgspec
import numpy as np
import onnxruntime as ort
import torch
from torch import nn


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    runs: int
    threads: int
    onnx_ms_p50: float
    onnx_ms_p99: float
    torch_ms_p50: float
    torch_ms_p99: float

    @property
    def speedup(self) -> float:
        return self.torch_ms_p50 / self.onnx_ms_p50


def ort_session(onnx_bytes: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def _times_ms(fn: object, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()  # type: ignore[operator]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(onnx_bytes: bytes, net: nn.Module, image: np.ndarray, *, runs: int = 30, threads: int = 1) -> Latency:
    """`image` is one model input (1, 3, H, W) float32."""
    sess = ort_session(onnx_bytes, threads)
    name = sess.get_inputs()[0].name
    onnx_ms = _times_ms(lambda: sess.run(None, {name: image}), runs, 3)
    model = copy.deepcopy(net).cpu().eval()
    x = torch.from_numpy(image)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            torch_ms = _times_ms(lambda: torch.softmax(model(x), dim=1), runs, 3)
    finally:
        torch.set_num_threads(before)
    return Latency(
        runs=runs,
        threads=threads,
        onnx_ms_p50=float(np.median(onnx_ms)),
        onnx_ms_p99=float(np.percentile(onnx_ms, 99)),
        torch_ms_p50=float(np.median(torch_ms)),
        torch_ms_p99=float(np.percentile(torch_ms, 99)),
    )
