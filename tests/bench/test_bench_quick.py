"""CI's benchmark gate: quick workloads, ratios measured in the same run against their floors."""

from __future__ import annotations

import pytest

from bench import run


@pytest.mark.bench
def test_quick_benchmarks_meet_their_ratio_floors(capsys: pytest.CaptureFixture[str]) -> None:
    code = run.main(["--quick", "--check"])
    out, err = capsys.readouterr()
    print(out)
    assert "ratio tidegate / duckdb" in out and "train_models" in out
    assert code == 0, err
