"""The live dashboard in a real headless Chromium: the page loads, and values change as readings arrive
(simulator -> Mosquitto -> flow -> live topic -> dashboard server -> SSE -> page)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.mqtt_broker import (
    TIDEGATE,
    Broker,
    broker,
    flow_config,
    free_port,
    sim_report,
    start_flow,
    start_simulator,
    wait_exit,
    wait_subscribed,
)

__all__ = ["broker"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    msg = f"{url} did not answer"
    raise AssertionError(msg)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("mount", ["dashboard", "serve"])
def test_dashboard_page_updates_itself_in_headless_chromium(broker: Broker, tmp_path: Path, mount: str) -> None:
    """Standalone (`tidegate dashboard`) and mounted in the serving app (`tidegate serve --dashboard-mqtt`)."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    flow_config(tmp_path / "flow.toml", window_s=1.0, lateness_s=0.5)
    web = free_port()
    if mount == "dashboard":
        command, health = ["dashboard", "--mqtt", broker.url], "/health"
    else:
        (tmp_path / "registry").mkdir()
        command = ["serve", "--registry", str(tmp_path / "registry"), "--dashboard-mqtt", broker.url]
        health = "/health/live"
    with (tmp_path / "dashboard.log").open("ab") as log:
        server = subprocess.Popen([*TIDEGATE, *command, "--port", str(web)], stdout=log, stderr=log)
    metrics_port = free_port()
    flow = start_flow(broker, tmp_path, recovery=False, metrics_port=metrics_port, idle_s=3)
    try:
        _wait_http(f"http://127.0.0.1:{web}{health}")
        wait_subscribed(metrics_port)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{web}/dashboard")
            assert page.title() == "tidegate · live devices"
            page.wait_for_function("document.getElementById('feed').textContent === 'live'", timeout=10_000)
            assert page.text_content("#device-count") == "0"
            sim = start_simulator(broker, "--devices", "3", "--rate", "5", "--duration", "6s", "--seed", "2")
            row = "#devices tr[data-device='dev-0000'] td:nth-child(2)"
            page.wait_for_selector(row, timeout=15_000)
            first = page.text_content(row)
            # A later window of the same device replaces the row: the value on the page changes by itself.
            changed = (
                f'(() => {{ const c = document.querySelector("{row}"); return c && c.textContent !== {first!r}; }})()'
            )
            page.wait_for_function(changed, timeout=15_000)
            assert page.text_content("#device-count") == "3"
            assert int(page.text_content("#updates") or 0) >= 2
            browser.close()
        sim_report(sim)
        wait_exit(flow, tmp_path / "flow.log")
        state = urllib.request.urlopen(f"http://127.0.0.1:{web}/dashboard/state", timeout=5).read()
        assert b'"device_id":"dev-0002"' in state
    finally:
        flow.kill()
        server.terminate()
        server.wait(10)


def test_the_board_keeps_bounded_state_and_pushes_to_listeners() -> None:
    import asyncio

    from engine.serve.live import LiveBoard, LiveConfig

    board = LiveBoard(LiveConfig(max_devices=3, max_anomalies=2, queue_size=2))

    async def scenario() -> list[list[dict]]:
        q = board.listen()
        for i in range(5):
            board.apply([{"kind": "window", "device_id": f"d{i}", "count": i}, {"kind": "anomaly", "n": i}])
        await asyncio.sleep(0)
        got = [q.get_nowait() for _ in range(q.qsize())]
        board.unlisten(q)
        return got

    got = asyncio.run(scenario())
    state = board.state()
    assert [d["device_id"] for d in state["devices"]] == ["d2", "d3", "d4"]
    assert [a["n"] for a in state["anomalies"]] == [3, 4]
    assert len(got) == 2 and got[-1][0]["device_id"] == "d4"  # a slow reader keeps only the newest updates
