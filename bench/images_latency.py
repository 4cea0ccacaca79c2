"""Benchmark: single-image CPU latency of the image classifier, ONNX Runtime vs torch (eager), one thread.

Workload: EfficientNet-Lite0 with its ImageNet weights and a new 4-class head at 224 × 224 (quick: 128 ×
128), exported to ONNX exactly as `tidegate train-images` exports it (parity checked). Each engine scores
one prepared image per call after warm-up: medians and p99 in ms, judged as the ratio torch/onnx measured
in the same run. Beside it, what the server adds per request: decoding a 640 × 480 JPEG with Pillow,
converting, resizing and normalising it (`engine.serve.classify`).

    python -m bench.images_latency [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Any

import numpy as np

# Quick-mode floor (torch median / onnx median, one thread). Measured on the 2-core CI-like machine: 5-20×
# at 64-128 px under load; the floor only catches a gross regression (e.g. an unoptimised or fp64 graph).
LATENCY_FLOOR = 1.5
CLASSES = 4


def _jpeg(seed: int) -> bytes:
    from engine.samples.shapes import render

    im = render("circle", 480, np.random.default_rng(seed)).resize((640, 480))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _decode_ms(data: bytes, size: int, calls: int) -> list[float]:
    from engine.serve.classify import decode_image, to_input
    from models.images.network import input_spec

    spec = input_spec(size)
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        to_input(decode_image(data, spec), spec)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(quick: bool) -> list[dict[str, Any]]:
    import torch

    from models.images.export import check_parity, to_onnx
    from models.images.latency import measure
    from models.images.network import TransferNet, input_spec

    size, runs = (128, 40) if quick else (224, 200)
    torch.manual_seed(0)
    net = TransferNet(CLASSES, size, pretrained=True).eval()
    spec = input_spec(size)
    t0 = time.perf_counter()
    onnx = to_onnx(net, spec)
    export_s = time.perf_counter() - t0
    x = np.random.default_rng(0).normal(size=(8, 3, size, size)).astype(np.float32)
    parity = check_parity(onnx, net, x)
    lat = measure(onnx, net, x[:1], runs=runs, threads=1)
    decode = _decode_ms(_jpeg(0), size, runs)
    return [
        {
            "bench": "images_latency",
            "name": f"torch/onnx single-image latency ({size} px, 1 thread)",
            "metric": "ratio_single",
            "value": lat.speedup,
            "note": f"onnx median {lat.onnx_ms_p50:.2f}ms p99 {lat.onnx_ms_p99:.2f}ms; torch median "
            f"{lat.torch_ms_p50:.2f}ms p99 {lat.torch_ms_p99:.2f}ms; decode+preprocess 640×480 JPEG median "
            f"{statistics.median(decode):.2f}ms; parity {parity.max_abs_diff:.1e}; {len(onnx) / 1e6:.1f} MB",
        },
        {
            "bench": "images_latency",
            "name": f"export to ONNX + parity ({size} px)",
            "metric": "export_s",
            "value": export_s,
            "note": f"{len(onnx):,} bytes",
        },
    ]


def check(results: list[dict[str, Any]]) -> list[str]:
    """Failure messages for ratios under their floors (ratios only; never an absolute time)."""
    return [
        f"images_latency: {r['name']} is {r['value']:.2f}x, under the floor {LATENCY_FLOOR}x"
        for r in results
        if r["metric"] == "ratio_single" and r["value"] < LATENCY_FLOOR
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    results = run(args.quick)
    for r in results:
        unit = "s" if r["metric"].endswith("_s") else "x"
        print(f"{r['name']:55s} {r['value']:8.2f}{unit}  {r['note']}")
    for msg in check(results):
        print("FAIL", msg)


if __name__ == "__main__":
    main()
