"""Paired bootstrap confidence intervals over samples, pooled across seeds, and the three-way decisions built on them.

Every method of one evaluation seed starts from the same z_0, so sample i of every method comes from the same z_i. A
replicate draws N indices with replacement once (a row of `resample_counts`) and recomputes *every* method's set
metrics on those indices, so a difference between two methods is computed on the same resampled z (paired). Seeds
are independent z-sets: the pooled estimate is the mean over seeds, and replicate b of the pool is the mean of each
seed's replicate b. The interval is the basic (pivotal) bootstrap re-centred on the replicates' mean:
θ̂ − (q(1 − α/2) − m*) … θ̂ − (q(α/2) − m*), m* the replicates' mean. The replicates give the spread and its skew;
the shift that resampling itself adds is dropped, because a resample holds only ~63 % distinct samples: coverage
then reads several points low and FID high, a bias of the resampling, not of the metric at this N (every metric
here is defined at the N it is measured at, so the estimate itself is the centre).

What is *not* resampled: the real reference digits (fixed, the same for every method and seed) and the networks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

LEVEL = 0.95


def resample_counts(n: int, b: int, seed: int) -> torch.Tensor:
    """(b, n) float64: row r holds how often each of n samples is drawn in replicate r (each row sums to n)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (b, n), generator=gen)
    return torch.zeros(b, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(b, n, dtype=torch.float64))


@dataclass
class Interval:
    """A point estimate and its 95 % bootstrap interval; per_seed holds (estimate, lo, hi) of each seed alone."""

    mean: float
    lo: float
    hi: float
    per_seed: list[tuple[float, float, float]]

    def as_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "per_seed": [list(p) for p in self.per_seed]}


def basic_interval(point: float, replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """point − (upper quantile − mean) … point − (lower quantile − mean) of the replicates: the basic interval
    without the resampling's own shift (see the module docstring)."""
    reps = np.asarray(replicates, dtype=np.float64)
    dev = reps - reps.mean()
    q_lo, q_hi = np.quantile(dev, [(1 - level) / 2, (1 + level) / 2])
    return float(point - q_hi), float(point - q_lo)


def pooled(points: Sequence[float], replicates: Sequence[np.ndarray], level: float = LEVEL) -> Interval:
    """Mean over seeds of a statistic, with its interval from the seed-wise mean of the replicates."""
    pts = np.asarray(points, dtype=np.float64)
    reps = np.stack([np.asarray(r, dtype=np.float64) for r in replicates])  # (seeds, B)
    per_seed = [(float(p), *basic_interval(float(p), r, level)) for p, r in zip(pts, reps)]
    lo, hi = basic_interval(float(pts.mean()), reps.mean(0), level)
    return Interval(float(pts.mean()), lo, hi, per_seed)


def statistic(points: Sequence[dict], replicates: Sequence[dict], fn: Callable[[Callable[[str, str], object]], object]
              ) -> Interval:
    """Pool fn over seeds. points[s][row][metric] is a float, replicates[s][row][metric] a (B,) array; fn gets a
    getter(row, metric) and combines values arithmetically, so the same fn gives the estimate and every replicate."""
    est = [float(fn(lambda row, key, p=p: p[row][key])) for p in points]
    reps = [np.asarray(fn(lambda row, key, r=r: r[row][key]), dtype=np.float64) for r in replicates]
    return pooled(est, reps)


# ---------------------------------------------------------------------------------------------------- decisions
PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


def decide(iv: Interval, at_most: float | None = None, at_least: float | None = None) -> str:
    """PASS when the whole interval lies on the target's side of the bound, FAIL when it lies wholly on the other
    side, INCONCLUSIVE when it straddles the bound."""
    if at_most is not None:
        return PASS if iv.hi <= at_most else FAIL if iv.lo > at_most else INCONCLUSIVE
    if at_least is not None:
        return PASS if iv.lo >= at_least else FAIL if iv.hi < at_least else INCONCLUSIVE
    raise ValueError("decide needs at_most or at_least")


def agree(*statuses: str) -> str:
    """Two (or more) independent metrics on one claim: PASS or FAIL only when they all say so, else INCONCLUSIVE."""
    return statuses[0] if len(set(statuses)) == 1 else INCONCLUSIVE


def all_of(statuses: Sequence[str]) -> str:
    """A claim made of parts: PASS when every part passes, FAIL when any part fails, else INCONCLUSIVE."""
    if all(s == PASS for s in statuses):
        return PASS
    return FAIL if FAIL in statuses else INCONCLUSIVE
