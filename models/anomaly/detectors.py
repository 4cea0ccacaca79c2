"""River detectors for one measurement of one device, all with River's verb set (`learn_one(x, y)` /
`score_one(x, y)`, x unused), scores in z units (larger = stranger), fed one reading at a time.

Measured on the simulator's injected anomalies (`python -m bench.iot_anomaly`; numbers in the issue
note), the default is `ewz` for every measurement: an exponentially weighted mean and variance (River
`stats.EWMean` / `stats.EWVar`), so the level follows the daily cycle and drift, which the global-mean
detector (`sad`, River `StandardAbsoluteDeviation`) cannot; it is as accurate as a rolling Gaussian
(`gaussian`, River `GaussianScorer` over a window) at a third of the cost per event, and much cheaper than
`hst` (River `HalfSpaceTrees`). Stuck sensors are not outliers at all (the value is plausible, it just never
changes), so a repeat counter catches them (see `stream.py`).

The flow runs `ewz` vectorised with numpy (`ewz.py`: the same recurrences, bit for bit, over a whole batch);
`EWZScore` here is the River form, kept as its reference (`ewz-river`, parity-tested). This module imports
River, and River imports scipy (~50 MB, ~1 s): `stream.py` imports it only when a River detector is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from river import base, stats


class EWZScore(base.SupervisedAnomalyDetector):
    """|y − EWMean| / max(√EWVar, min_std), 0 during the first `warmup` values learned.

    Parameters
    ----------
    fading_factor
        Weight of the newest value in the running mean and variance (River `EWMean`/`EWVar`).
    min_std
        A floor on the deviation, in the measurement's units, so a very quiet sensor does not turn
        rounding into alerts.
    warmup
        Values to learn before scoring.
    """

    def __init__(self, fading_factor: float = 0.05, min_std: float = 0.05, warmup: int = 30) -> None:
        self.fading_factor = fading_factor
        self.min_std = min_std
        self.warmup = warmup
        self.mean = stats.EWMean(fading_factor)
        self.var = stats.EWVar(fading_factor)
        self.n = 0

    def learn_one(self, x: Any, y: float) -> None:
        self.mean.update(y)
        self.var.update(y)
        self.n += 1

    def score_one(self, x: Any, y: float) -> float:
        if self.n < self.warmup:
            return 0.0
        sd = math.sqrt(max(self.var.get(), 0.0))
        return abs(y - self.mean.get()) / (sd if sd > self.min_std else self.min_std)

    def expected(self) -> float:
        return self.mean.get()


class _Wrapped(base.SupervisedAnomalyDetector):
    """A River anomaly detector behind the same interface (for the comparison in the benchmark)."""

    def __init__(self, inner: Any, *, to_z: Callable[[float], float] | None = None, warmup: int = 30) -> None:
        self.inner = inner
        self.to_z = to_z
        self.warmup = warmup
        self.n = 0
        self.mean = stats.Mean()

    def learn_one(self, x: Any, y: float) -> None:
        self.inner.learn_one(None, y) if _supervised(self.inner) else self.inner.learn_one({"y": y})
        self.mean.update(y)
        self.n += 1

    def score_one(self, x: Any, y: float) -> float:
        if self.n < self.warmup:
            return 0.0
        s = self.inner.score_one(None, y) if _supervised(self.inner) else self.inner.score_one({"y": y})
        return self.to_z(s) if self.to_z else s

    def expected(self) -> float:
        return self.mean.get()


def _supervised(inner: Any) -> bool:
    return isinstance(inner, base.SupervisedAnomalyDetector)


def _gauss_to_z(s: float) -> float:
    # GaussianScorer returns 2|CDF(y) − 0.5|; map back to |z| so one threshold serves all detectors.
    from statistics import NormalDist

    p = min(max((1 + s) / 2, 0.5), 1 - 1e-16)
    return NormalDist().inv_cdf(p)


def _sad(fading_factor: float, min_std: float, warmup: int) -> base.SupervisedAnomalyDetector:
    from river import anomaly

    return _Wrapped(anomaly.StandardAbsoluteDeviation(), warmup=warmup)


def _gaussian(fading_factor: float, min_std: float, warmup: int) -> base.SupervisedAnomalyDetector:
    from river import anomaly

    window = max(int(2 / fading_factor), 10)
    return _Wrapped(anomaly.GaussianScorer(window_size=window, grace_period=0), to_z=_gauss_to_z, warmup=warmup)


def _hst(fading_factor: float, min_std: float, warmup: int) -> base.SupervisedAnomalyDetector:
    from river import anomaly, compose, preprocessing

    model = compose.Pipeline(preprocessing.StandardScaler(), anomaly.HalfSpaceTrees(n_trees=10, height=6, seed=1))
    # HST scores lie in [0, 1]; spread them over a z-like scale so the shared threshold is usable.
    return _Wrapped(model, to_z=lambda s: 10 * s, warmup=warmup)


def _ewz(fading_factor: float, min_std: float, warmup: int) -> base.SupervisedAnomalyDetector:
    return EWZScore(fading_factor, min_std, warmup)


DETECTORS: dict[str, Callable[[float, float, int], base.SupervisedAnomalyDetector]] = {
    "ewz": _ewz,
    "ewz-river": _ewz,
    "sad": _sad,
    "gaussian": _gaussian,
    "hst": _hst,
}


def make_detector(name: str, *, fading_factor: float, min_std: float, warmup: int) -> base.SupervisedAnomalyDetector:
    """A fresh detector by name (one of `DETECTORS`)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        from engine.errors import UsageError

        msg = f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}"
        raise UsageError(msg) from None
    return factory(fading_factor, min_std, warmup)
