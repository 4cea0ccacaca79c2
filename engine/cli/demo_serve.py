"""The serving part of `make demo`: a real server on a free port, predictions, interactions, recommendations.

    run_serve_demo(Path(".demo"), Path(".demo/registry"))

Trains the recommender on MovieLens (shipped offline in a package), starts `tidegate serve` with the demo's
churn model and that recommender, sends predictions and interactions, shows a recommendation before and after
an interaction, stops the server, then runs the interactions flow over what the server spooled into DuckDB.
Ends by itself.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the server exited with code {proc.returncode}"
            raise RuntimeError(msg)
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    msg = f"the server was not ready within {timeout_s:.0f}s"
    raise RuntimeError(msg)


def run_serve_demo(workdir: Path, registry: Path, *, say: Callable[[str], None] = print) -> None:
    import httpx
    import msgspec

    from engine.registry import Registry
    from engine.samples.churn import churn_table
    from flows.interactions import run_interactions
    from models.recommender import load_interactions, train_recommender
    from models.recommender.data import movielens_titles

    workdir.mkdir(parents=True, exist_ok=True)
    reg = Registry(registry)
    say("\n== serve 1. train the recommender on MovieLens (real ratings, shipped inside a package; offline)")
    log = load_interactions("movielens")
    rec = train_recommender(log, name="recommender", now=dt.datetime.now(dt.UTC), registry=reg, evaluate_first=False)
    assert rec.manifest is not None
    say(
        f"   {len(log):,} interactions, {log.n_users:,} users, {rec.arrays.n_items:,} items -> "
        f"{registry}/recommender/{rec.manifest.version} (model.npz, {rec.manifest.size_bytes:,} bytes)"
    )
    titles = movielens_titles()

    port, token = _free_port(), secrets.token_hex(8)
    spool, logfile = workdir / "spool", workdir / "server.log"
    url = f"http://127.0.0.1:{port}"
    say(f"== serve 2. tidegate serve --registry {registry} --port {port} --spool {spool}  (logs: {logfile})")
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--registry",
                str(registry),
                "--port",
                str(port),
                "--spool",
                str(spool),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TIDEGATE_ADMIN_TOKEN": token},
            start_new_session=True,
        )
        try:
            t0 = time.perf_counter()
            _wait_ready(url, proc)
            with httpx.Client(base_url=url, timeout=10) as c:
                say(f"   ready in {time.perf_counter() - t0:.1f}s: {c.get('/health/ready').json()['models']}")
                _predictions(c, reg, churn_table, msgspec, say)
                _recommendations(c, titles, say)
                metrics = c.get("/metrics").text.splitlines()
                say("== serve 5. a few metrics (GET /metrics)")
                for line in metrics:
                    if line.startswith(
                        (
                            "tidegate_predictions_total{",
                            "tidegate_recommendations_total{",
                            "tidegate_interactions_total{",
                        )
                    ):
                        say(f"   {line}")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    say("== serve 6. server stopped; the interactions flow stores what it spooled (the server never opens DuckDB)")
    stats = run_interactions(spool, workdir / "tidegate.duckdb", workdir / "recommender_state.json")
    say(
        f"   received {stats.received}  accepted {stats.accepted}  rejected {stats.rejected} (dead letter)  "
        f"duplicates {stats.duplicates}  -> {workdir / 'tidegate.duckdb'} (tables interactions, rejects)"
    )


def _predictions(c: Any, reg: Any, churn_table: Any, msgspec: Any, say: Callable[[str], None]) -> None:
    man = reg.manifest("churn")
    frame = churn_table(rows=3, seed=99).select([i.column for i in man.inputs])
    body = msgspec.json.encode({"instances": frame.to_dicts()})
    r = c.post("/v1/predict/churn", content=body, headers={"content-type": "application/json"})
    doc = r.json()
    say(
        f"== serve 3. POST /v1/predict/churn (3 customers, one ONNX call) -> churn v{doc['version']}, "
        f"threshold {man.threshold:.2f}"
    )
    for inst, p in zip(frame.to_dicts(), doc["predictions"], strict=True):
        say(
            f"   tenure {inst['tenure_months']:>3} months, {inst['contract']:<15} -> {p['label']:<3} "
            f"(P(churn) {p['probabilities'][man.positive_label]:.2f})"
        )
    bad = c.post("/v1/predict/churn", json={"instances": [{"tenure_months": "long"}]})
    say(f"   a bad request -> {bad.status_code}: {bad.json()['detail']}")


def _recommendations(c: Any, titles: dict[str, str], say: Callable[[str], None]) -> None:
    def show(user: str, label: str) -> list[str]:
        doc = c.get(f"/v1/recommendations/{user}?k=5").json()
        items = [i["item_id"] for i in doc["items"]]
        say(f"   {label} ({doc['source']}): " + "; ".join(titles.get(i, i)[:32] for i in items))
        return items

    say("== serve 4. recommendations before and after an interaction")
    user = "newcomer-1"
    before = show(user, f"GET /v1/recommendations/{user} before")
    event = {"user_id": user, "item_id": "1", "event": "click", "ts": dt.datetime.now(dt.UTC).isoformat()}
    r = c.post("/v1/interactions", json={"interactions": [event, {"user_id": user, "event": "click"}]}).json()
    say(
        f"   POST /v1/interactions: {user} clicks '{titles.get('1', '1')}' "
        f"(accepted {r['accepted']}, rejected {r['rejected']}: {r['rejects'][0]['message']})"
    )
    after = show(user, f"GET /v1/recommendations/{user} after ")
    say(f"   changed: {len(set(after) - set(before))} of 5 items, on the very next call")
    show("15", "known MovieLens user 15")
