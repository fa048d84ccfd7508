"""Paired bootstrap intervals and the three-way decisions, on synthetic data whose true difference is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqngan.bootstrap import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Interval,
    agree,
    all_of,
    decide,
    pooled,
    resample_counts,
    statistic,
)
from dqngan.metrics import Reference


def test_resample_counts_are_reproducible_resamples():
    c = resample_counts(50, 200, seed=3)
    assert c.shape == (200, 50) and torch.all(c.sum(1) == 50) and torch.all(c >= 0)
    assert torch.equal(c, resample_counts(50, 200, seed=3)) and not torch.equal(c, resample_counts(50, 200, seed=4))
    assert 0.55 < float((c > 0).double().mean()) < 0.72  # a bootstrap draw holds ~63 % of the samples


def test_paired_fid_interval_covers_the_known_difference():
    """Method A = method E's features shifted by delta along one axis, on the same samples. Against a fixed
    reference, FID_A - FID_E = delta^2 + 2 delta (mean_E - mean_ref)[0] exactly (equal covariances), so over the
    population of E's samples the true difference is delta^2 - 2 delta mean_ref[0]."""
    d, n, delta = 4, 300, 0.4
    ref_feats = torch.randn(1000, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = Reference(ref_feats)
    truth = delta ** 2 - 2 * delta * float(ref_feats[:, 0].mean())
    shift = torch.zeros(d, dtype=torch.float64)
    shift[0] = delta
    covered, widths = 0, []
    for rep in range(20):
        e = torch.randn(n, d, generator=torch.Generator().manual_seed(100 + rep), dtype=torch.float64)
        counts = torch.cat([torch.ones(1, n, dtype=torch.float64), resample_counts(n, 300, seed=rep)])
        fa, fe = ref.scores(e + shift, counts, fid_only=True)["fid"], ref.scores(e, counts, fid_only=True)["fid"]
        iv = pooled([float(fa[0] - fe[0])], [(fa[1:] - fe[1:]).numpy()])
        covered += iv.lo <= truth <= iv.hi
        widths.append(iv.hi - iv.lo)
    assert covered >= 16, covered  # nominal 95 %: 19 of 20 expected; 16 or fewer has probability < 2 %
    assert 0 < np.mean(widths) < 4 * 2 * delta / np.sqrt(n)  # about 4 sd of 2 delta mean_E[0]: not vacuous


def test_pooling_seeds_averages_and_narrows():
    rng = np.random.default_rng(0)
    one = pooled([1.0], [1.0 + rng.normal(0, 0.1, 2000)])
    four = pooled([1.0, 1.2, 0.8, 1.0], [p + rng.normal(0, 0.1, 2000) for p in (1.0, 1.2, 0.8, 1.0)])
    assert four.mean == pytest.approx(1.0) and len(four.per_seed) == 4
    assert (four.hi - four.lo) == pytest.approx((one.hi - one.lo) / 2, rel=0.15)  # 1/sqrt(4) of one seed's width
    assert one.lo == pytest.approx(1 - 1.96 * 0.1, abs=0.02) and one.hi == pytest.approx(1 + 1.96 * 0.1, abs=0.02)


def test_interval_is_centred_on_the_estimate_and_keeps_the_skew():
    # replicates centred 0.5 above the estimate (as a resample's coverage sits below, FID above): that shift belongs
    # to the resampling, so the interval stays around the estimate; the spread and the skew come from the replicates
    rng = np.random.default_rng(1)
    iv = pooled([1.0], [1.5 + rng.normal(0, 0.1, 4000)])
    assert iv.lo < 1.0 < iv.hi and (iv.hi - iv.lo) == pytest.approx(2 * 1.96 * 0.1, rel=0.1)
    skewed = pooled([0.0], [rng.exponential(1.0, 20000)])  # a long right tail: reflected, the long side is below
    assert -skewed.lo > 2 * skewed.hi


def test_statistic_pairs_rows_within_a_seed():
    points = [{"a": {"m": 3.0}, "b": {"m": 1.0}}]
    reps = [{"a": {"m": np.array([3.1, 2.9, 3.0])}, "b": {"m": np.array([1.1, 0.9, 1.0])}}]
    iv = statistic(points, reps, lambda v: v("a", "m") - 0.5 * v("b", "m"))
    assert iv.mean == pytest.approx(2.5) and iv.lo < 2.5 < iv.hi


def test_three_way_decisions():
    def iv(lo, hi):
        return Interval((lo + hi) / 2, lo, hi, [])

    assert [decide(iv(-2, -1), at_most=0), decide(iv(1, 2), at_most=0), decide(iv(-1, 1), at_most=0)] == [
        PASS, FAIL, INCONCLUSIVE]
    assert [decide(iv(0.91, 0.95), at_least=0.9), decide(iv(0.8, 0.89), at_least=0.9),
            decide(iv(0.88, 0.92), at_least=0.9)] == [PASS, FAIL, INCONCLUSIVE]
    assert agree(PASS, PASS) == PASS and agree(FAIL, FAIL) == FAIL
    assert agree(PASS, FAIL) == INCONCLUSIVE and agree(PASS, INCONCLUSIVE) == INCONCLUSIVE
    assert all_of([PASS, PASS]) == PASS and all_of([PASS, INCONCLUSIVE]) == INCONCLUSIVE
    assert all_of([INCONCLUSIVE, FAIL, PASS]) == FAIL
    with pytest.raises(ValueError):
        decide(iv(0, 1))
