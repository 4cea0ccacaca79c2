"""The training benchmark's ratio checks (the benchmark itself runs in bench.run)."""

from __future__ import annotations

from bench.train_models import BATCH_FLOOR, SINGLE_ROW_FLOOR, check


def test_check_flags_only_ratios_under_their_floor() -> None:
    results = [
        {"name": "train", "metric": "wall_s", "value": 0.001},  # absolute times are never judged
        {"name": "lr 1 row", "metric": "ratio_single", "value": SINGLE_ROW_FLOOR + 1},
        {"name": "rf 1 row", "metric": "ratio_single", "value": SINGLE_ROW_FLOOR - 1},
        {"name": "gb 256 rows", "metric": "ratio_batch", "value": BATCH_FLOOR / 2},
    ]
    failures = check(results)
    assert len(failures) == 2 and "rf 1 row" in failures[0] and "gb 256 rows" in failures[1]
