"""Benchmark: the server over HTTP with wrk, beside a FastAPI peer and a bare ASGI hello, in the same run.

Workloads (seeded): the churn classifier (ONNX, trained here), one instance per POST /v1/predict/churn; a
co-occurrence recommender over a 10 000-item catalogue, GET /v1/recommendations/{user}?k=10 for random
known users. References: the FastAPI + pydantic + onnxruntime peer serving the same ONNX file
(bench/peers/fastapi_predict.py), and a bare ASGI app answering a fixed body (the limit of the ASGI server).

Method: every server is pinned to CPU 0 (taskset, one worker process), wrk to CPU 1, 127.0.0.1,
`wrk -t1 -c16 --latency`; each target runs `repeats` times for `seconds` after a warm-up; medians of rps,
p50 and p99 are reported with the errors (non-2xx + socket errors) summed. Ours and the references run on
uvicorn with uvloop and httptools: the bare hello (the limit) with the same one-write protocol as
`tidegate serve` (engine/serve/wire.py), the FastAPI peer on stock uvicorn (its usual server). The full mode
also runs the bare hello on stock uvicorn, and ours and both references on Granian, the other candidate, to
show the choice. The machine is shared: absolute numbers are noisy, the ratios measured here are the point.

    python -m bench.serve_http [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Quick-mode floors (CI), set under what this machine measured in the same run (see the issue note); the
# issue's goals are 1.3x the FastAPI peer and 0.5x the bare limit.
PEER_FLOOR = 1.3  # the goal itself: measured 9.6-10.7x on uvicorn
LIMIT_FLOOR = 0.4  # measured 0.53-0.54 (one-write uvicorn; Granian 0.50, 0.31 before micro-batching)
CONNECTIONS = 16
ONE_WRITE = "engine.serve.wire:OneWriteProtocol"  # the protocol `tidegate serve` runs uvicorn with
PEER, LIMIT = "fastapi peer predict (uvicorn)", "bare ASGI hello (uvicorn, tidegate's protocol)"
SERVER_CPU, LOAD_CPU = "0", "1"
P99_GOAL_MS = {"tidegate predict": 2.0, "tidegate recommendations": 5.0}  # the issue's, at c16 (reported)
PY = sys.executable


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _taskset(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


@contextmanager
def _server(cmd: list[str], port: int, probe: str, env: dict[str, str] | None = None) -> Iterator[str]:
    import httpx

    proc = subprocess.Popen(
        [*_taskset(SERVER_CPU), *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                msg = f"{' '.join(cmd)} exited with {proc.returncode}"
                raise RuntimeError(msg)
            try:
                if httpx.get(url + probe, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                msg = f"{' '.join(cmd)} did not start within 60 s"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk(url: str, script: Path, seconds: float) -> WrkResult:
    out = subprocess.run(
        [
            *_taskset(LOAD_CPU),
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(rps, p50, p99, errors, requests)


def _scripts(folder: Path, instance: dict[str, Any], users: list[str]) -> dict[str, Path]:
    body = json.dumps({"instances": [instance]}).replace("\\", "\\\\").replace('"', '\\"')
    post = folder / "post.lua"
    post.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n')
    rec = folder / "rec.lua"
    names = ", ".join(f'"{u}"' for u in users)
    rec.write_text(
        f"local users = {{{names}}}\nmath.randomseed(7)\n"
        "request = function()\n"
        '  return wrk.format("GET", "/v1/recommendations/" .. users[math.random(#users)] .. "?k=10")\n'
        "end\n"
    )
    get = folder / "get.lua"
    get.write_text("")
    return {"post": post, "rec": rec, "get": get}


def _workload(folder: Path, quick: bool) -> tuple[Path, dict[str, Any], list[str]]:
    """A registry with churn (ONNX) and a 10 000-item recommender; one churn instance; some known users."""
    import polars as pl

    from engine.registry import Registry
    from engine.samples.churn import write_churn_csv
    from models.recommender import train_recommender
    from models.recommender.synthetic import synthetic_log
    from models.training import TrainConfig, train

    now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    registry = Registry(folder / "registry")
    csv = write_churn_csv(folder / "churn.csv", rows=2000, seed=0)
    cfg = TrainConfig(data=str(csv), target="churn", name="churn", models=("lr",), folds=2, report_dir=folder / "r")
    train(cfg, now=now, registry=registry)
    log = synthetic_log(users=5000 if quick else 20000, items=10_000, per_user=20, clusters=100, seed=0)
    train_recommender(log, name="recommender", now=now, registry=registry, evaluate_first=False)
    instance = pl.read_csv(csv).drop("churn").row(0, named=True)
    users = [f"u{i}" for i in range(0, 5000, 7)]
    return registry.root, instance, users


def run(quick: bool) -> list[dict[str, Any]]:
    seconds, repeats = (3.0, 1) if quick else (10.0, 3)
    if shutil.which("wrk") is None:
        msg = "wrk is not installed: apt-get install wrk (make sysdeps)"
        raise RuntimeError(msg)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        registry, instance, users = _workload(folder, quick)
        scripts = _scripts(folder, instance, users)
        env = {"TIDEGATE_BENCH_REGISTRY": str(registry)}
        port = _free_port()
        ours = [
            PY,
            "-m",
            "engine.cli",
            "serve",
            "--registry",
            str(registry),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        granian = [PY, "-m", "granian", "--interface", "asgi", "--log-level", "warning", "--port", str(port)]
        uvicorn = [PY, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--port", str(port)]
        targets: list[tuple[str, list[str], str, str, str]] = [
            ("tidegate predict", ours, "/v1/predict/churn", "post", "/health/ready"),
            ("tidegate recommendations", ours, "/", "rec", "/health/ready"),
            (PEER, [*uvicorn, "bench.peers.fastapi_predict:app"], "/v1/predict/churn", "post", "/docs"),
            (LIMIT, [*uvicorn, "--http", ONE_WRITE, "bench.peers.hello_asgi:app"], "/", "get", "/"),
        ]
        if not quick:  # stock uvicorn, and the other server, for the choice
            targets += [
                ("bare ASGI hello (stock uvicorn)", [*uvicorn, "bench.peers.hello_asgi:app"], "/", "get", "/"),
                (
                    "tidegate predict (granian)",
                    [*ours, "--server", "granian"],
                    "/v1/predict/churn",
                    "post",
                    "/health/ready",
                ),
                (
                    "fastapi peer predict (granian)",
                    [*granian, "bench.peers.fastapi_predict:app"],
                    "/v1/predict/churn",
                    "post",
                    "/docs",
                ),
                ("bare ASGI hello (granian)", [*granian, "bench.peers.hello_asgi:app"], "/", "get", "/"),
            ]
        measured: dict[str, list[WrkResult]] = {}
        batching = ""
        for name, cmd, path, script, probe in targets:
            with _server(cmd, port, probe, env) as url:
                wrk(url + path, scripts[script], 1.0)  # warm-up
                measured[name] = [wrk(url + path, scripts[script], seconds) for _ in range(repeats)]
                if name == "tidegate predict":
                    batching = _batching(url)
    rows = _rows(measured, seconds, repeats)
    rows[0]["note"] += batching
    return rows


def _batching(url: str) -> str:
    """How many requests shared an ONNX call on average (the server's own metrics, warm-up included)."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    found = dict(re.findall(r'^tidegate_predict_batch_requests_(sum|count)\{model="churn"\} (\S+)$', text, re.M))
    if set(found) != {"sum", "count"} or float(found["count"]) == 0:
        return ""
    return f"; {float(found['sum']) / float(found['count']):.1f} requests per ONNX call"


def _rows(measured: dict[str, list[WrkResult]], seconds: float, repeats: int) -> list[dict[str, Any]]:
    med = {
        name: (
            statistics.median(r.rps for r in rs),
            statistics.median(r.p50_ms for r in rs),
            statistics.median(r.p99_ms for r in rs),
            sum(r.errors for r in rs),
            sum(r.requests for r in rs),
        )
        for name, rs in measured.items()
    }
    rows: list[dict[str, Any]] = []
    for name, (rps, p50, p99, errors, requests) in med.items():
        rows.append(
            {
                "name": f"{name} rps",
                "metric": "rps",
                "value": rps,
                "p50_ms": p50,
                "p99_ms": p99,
                "errors": errors,
                "note": f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, errors {errors}/{requests} "
                f"(median of {repeats} x {seconds:.0f}s, c{CONNECTIONS}, server on 1 core)"
                + (f"; goal p99 <= {P99_GOAL_MS[name]:g} ms" if name in P99_GOAL_MS else ""),
            }
        )
    ours, peer, limit = med["tidegate predict"][0], med[PEER][0], med[LIMIT][0]
    rows.append(
        {
            "name": "ratio predict / fastapi peer (same server)",
            "metric": "ratio",
            "value": ours / peer,
            "note": "goal 1.3x",
        }
    )
    rows.append(
        {"name": "ratio predict / bare ASGI limit", "metric": "ratio", "value": ours / limit, "note": "goal 0.5x"}
    )
    if "tidegate predict (granian)" in med:
        g = med["tidegate predict (granian)"][0]
        rows.append(
            {
                "name": "ratio predict on granian / bare on granian",
                "metric": "ratio",
                "value": g / med["bare ASGI hello (granian)"][0],
                "note": "reported",
            }
        )
        rows.append(
            {"name": "ratio predict uvicorn / granian", "metric": "ratio", "value": ours / g, "note": "reported"}
        )
    rec = med["tidegate recommendations"][0]
    rows.append(
        {
            "name": "ratio recommendations / bare ASGI limit",
            "metric": "ratio",
            "value": rec / limit,
            "note": "10 000 items",
        }
    )
    return rows


def check(results: list[dict[str, Any]]) -> list[str]:
    by = {r["name"]: r for r in results}
    failed = []
    peer = by["ratio predict / fastapi peer (same server)"]["value"]
    if peer < PEER_FLOOR:
        failed.append(f"serve_http: predict/fastapi ratio {peer:.2f} is below the floor {PEER_FLOOR}")
    limit = by["ratio predict / bare ASGI limit"]["value"]
    if limit < LIMIT_FLOOR:
        failed.append(f"serve_http: predict/bare-ASGI ratio {limit:.2f} is below the floor {LIMIT_FLOOR}")
    errors = sum(r.get("errors", 0) for r in results)
    if errors:
        failed.append(f"serve_http: {errors} failed requests under load (expected 0)")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = run(args.quick)
    for r in results:
        if r["metric"] == "rps":
            print(f"{r['name']:50s} {r['value']:>10,.0f}  {r['note']}")
        else:
            print(f"{r['name']:50s} {r['value']:>10.2f}x {r['note']}")
    for msg in check(results):
        print(f"FAIL {msg}", file=sys.stderr)
    print(f"({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
