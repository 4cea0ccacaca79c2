from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.samples.churn import write_churn_csv

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def churn_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded churn table as CSV (IDs, dates, yes/no flags, blanks: the real-export traps)."""
    return write_churn_csv(tmp_path_factory.mktemp("churn") / "churn.csv", rows=900, seed=3)
