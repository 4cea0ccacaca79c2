"""The commit probe runs beside a live Bytewax flow with recovery and never crashes it.

Regression (CI, stop 9): a flow process with recovery died of SIGBUS. Python's `sqlite3` and Bytewax's own
bundled SQLite in one process broke each other's POSIX locks, and the probe truncated the WAL index under
Bytewax's mapping. Before the fix this flow died within 0.2 s every time; the probe now asks from a reader
process of its own.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

ITEMS = 200_000


def _flow(rec: Path) -> None:
    import bytewax.operators as op
    from bytewax._bytewax import run_main
    from bytewax.dataflow import Dataflow
    from bytewax.recovery import RecoveryConfig, init_db_dir
    from bytewax.testing import TestingSource

    from engine.connectors.recovery_probe import CommitProbe

    init_db_dir(rec, 1)
    flow = Dataflow("r")
    keyed = op.key_on("k", op.input("inp", flow, TestingSource(range(ITEMS), batch_size=1000)), lambda x: str(x % 50))
    op.inspect("drop", op.stateful_map("sum", keyed, lambda acc, x: ((acc or 0) + x, None)), lambda *_: None)
    done = threading.Event()
    seen: list[object] = []

    def poll() -> None:
        probe = CommitProbe(rec, "r.inp", "iterable")
        while not done.is_set():
            seen.append(probe.committed())

    t = threading.Thread(target=poll)
    t.start()
    try:
        run_main(flow, epoch_interval=timedelta(milliseconds=5), recovery_config=RecoveryConfig(str(rec)))
    finally:
        done.set()
        t.join()
    final = CommitProbe(rec, "r.inp", "iterable").committed()
    print(len(seen), sum(s is not None for s in seen), final)


@pytest.mark.slow
def test_probing_while_the_flow_commits_never_crashes_it(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    run = subprocess.run(
        [sys.executable, __file__, str(rec)], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2]
    )
    assert run.returncode == 0, f"flow died with {run.returncode}: {run.stderr[-2000:]}"
    probes, answered, final = run.stdout.split()
    assert int(probes) > 10 and int(answered) > 0  # it really probed while commits happened
    assert int(final) == ITEMS  # the TestingSource's resume state once the flow is done: all items read


def test_a_dead_reader_is_replaced_and_the_flow_process_never_opens_the_store(tmp_path: Path) -> None:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.recovery import RecoveryConfig, init_db_dir
    from bytewax.testing import TestingSink, TestingSource, run_main

    from engine.connectors.recovery_probe import CommitProbe, _reader

    rec = tmp_path / "rec"
    rec.mkdir()
    init_db_dir(rec, 1)
    flow = Dataflow("r")
    op.output("out", op.input("inp", flow, TestingSource(range(50))), TestingSink([]))
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(rec)))
    probe = CommitProbe(rec, "r.inp", "iterable")
    assert probe.committed() == 50
    assert not [f for f in Path("/proc/self/fd").iterdir() if "sqlite3" in str(f.resolve())]
    proc = _reader(rec)._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert probe.committed() is None  # this probe saw the reader gone: asked again later...
    assert probe.committed() == 50  # ...a fresh reader answers
    assert CommitProbe(rec, "r.inp", "no-such-part").committed() is None


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[2]))
    _flow(Path(sys.argv[1]))
