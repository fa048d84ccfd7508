"""Tests for the classifiers and classifier-FID, on the real embedded digits and the shipped weights."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from dqngan.classifiers import MetricNet, RewardNet
from dqngan.data import ASSETS_DIR, load_dataset, stratified_split, to_float
from dqngan.metrics import (
    FIDScorer,
    Reference,
    batched,
    density_coverage,
    digit_entropy,
    digit_histogram,
    feature_stats,
    frechet_distance,
    gaussian_blur,
    kid,
    load_classifier,
    poly_kernel,
    weighted_entropy,
)


@pytest.fixture(scope="module")
def split():
    data = load_dataset("mnist5k")
    seed = json.loads((ASSETS_DIR / "classifiers.json").read_text())["split"]["seed"]
    train_idx, held_idx = stratified_split(data.labels, 100, seed)
    return data.images[train_idx], data.images[held_idx], data.labels[held_idx]


@pytest.fixture(scope="module")
def scorer(split):
    train_u8, _, _ = split
    return FIDScorer(train_u8, n=1000)


@pytest.mark.parametrize("kind,arch", [("metric", MetricNet), ("reward", RewardNet)])
def test_classifier_heldout_accuracy(split, kind, arch):
    _, held_u8, held_y = split
    model = load_classifier(kind)
    assert isinstance(model, arch) and not model.training
    logits = batched(model, "forward", held_u8)
    assert logits.shape == (1000, 10)
    assert (logits.argmax(1) == held_y).float().mean().item() >= 0.95
    assert batched(model, "features", held_u8[:10]).shape == (10, 64)


def test_classifiers_are_different_architectures():
    a, b = load_classifier("metric"), load_classifier("reward")
    assert type(a) is not type(b)
    assert {k: v.shape for k, v in a.state_dict().items()} != {k: v.shape for k, v in b.state_dict().items()}


def test_unknown_classifier_kind():
    with pytest.raises(ValueError, match="metric"):
        load_classifier("inception")


def test_frechet_distance_of_identical_stats_is_zero(split):
    mu, sigma = feature_stats(batched(load_classifier("metric"), "features", split[1]))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)


def test_frechet_distance_matches_closed_form_for_commuting_covariances():
    # Diagonal covariances: tr sqrt(S1 S2) = sum sqrt(a_i b_i), so FID = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(0)
    a, b, mu1, mu2 = rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5), rng.normal(size=5), rng.normal(size=5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_fid_ladder_is_monotone(split, scorer):
    _, held_u8, _ = split
    held = to_float(held_u8)
    g = torch.Generator().manual_seed(0)
    floor = scorer.score(held_u8)  # uint8 input
    blur1 = scorer.score(gaussian_blur(held, 1.0))  # float input
    blur2 = scorer.score(gaussian_blur(held, 2.0))
    noise = scorer.score(torch.rand(held.shape, generator=g) * 2 - 1)
    assert 0 < floor < blur1 < blur2 < noise
    assert noise > 20 * floor
    assert scorer.score(held) == pytest.approx(floor, rel=1e-5)  # the same digits as float give the same FID


def test_fid_requires_the_same_n(split, scorer):
    with pytest.raises(ValueError, match="same N|fixed N"):
        scorer.score(split[1][:500])


def test_fid_of_1000_samples_is_fast(split, scorer):
    t = time.perf_counter()
    scorer.score(split[1])
    assert time.perf_counter() - t < 2.0  # generous for a loaded CI machine; typically ~0.1-0.3 s


def test_digit_entropy_extremes():
    uniform = torch.eye(10).repeat(7, 1) * 5  # every class predicted equally often
    assert digit_entropy(uniform) == pytest.approx(1.0)
    assert digit_histogram(uniform) == pytest.approx(np.full(10, 0.1))
    single = torch.zeros(50, 10)
    single[:, 3] = 1
    assert digit_entropy(single) == pytest.approx(0.0)
    assert digit_histogram(single)[3] == 1.0


def test_real_digits_have_high_entropy(split, scorer):
    logits = scorer.logits(split[1])
    assert digit_entropy(logits) > 0.99


# ---------------------------------------------------------------------------------------------------- set metrics
def gauss(n, d=8, mean=0.0, scale=1.0, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale + mean


def test_reference_fid_equals_frechet_distance_and_resampling_equals_duplicating():
    real, fake = gauss(400, seed=1), gauss(300, mean=0.3, scale=1.2, seed=2)
    ref = Reference(real)
    plain = ref.scores(fake)
    assert float(plain["fid"][0]) == pytest.approx(frechet_distance(*feature_stats(fake), *feature_stats(real)),
                                                   rel=1e-9)
    # counts are a resample: FID, density and coverage of the counted set = those of the duplicated samples
    idx = torch.randint(0, 300, (300,), generator=torch.Generator().manual_seed(3))
    counts = torch.zeros(1, 300, dtype=torch.float64).index_add_(1, idx, torch.ones(1, 300, dtype=torch.float64))
    weighted, dup = ref.scores(fake, counts), ref.scores(fake[idx])
    for key in ("fid", "density", "coverage"):
        assert float(weighted[key][0]) == pytest.approx(float(dup[key][0]), rel=1e-9), key


def test_kid_is_the_unbiased_mmd_near_zero_for_one_distribution_and_grows_with_a_shift():
    x, y = gauss(300, seed=4), gauss(300, seed=5) * 3 + 1
    x = x * 3 + 1  # on the reals' standardised scale, as Reference computes it
    xs, ys = (x - y.mean(0)) / y.std(0), (y - y.mean(0)) / y.std(0)
    kxx, kyy, kxy = poly_kernel(xs, xs), poly_kernel(ys, ys), poly_kernel(xs, ys)
    n = len(x)
    by_hand = ((kxx.sum() - kxx.trace()) + (kyy.sum() - kyy.trace())) / (n * (n - 1)) - 2 * kxy.mean()
    assert kid(x, y) == pytest.approx(float(by_hand), rel=1e-9)
    same = [kid(gauss(300, seed=10 + i), gauss(300, seed=40 + i)) for i in range(5)]
    shifted = [kid(gauss(300, mean=0.5, seed=10 + i), gauss(300, seed=40 + i)) for i in range(5)]
    further = kid(gauss(300, mean=1.0, seed=10), gauss(300, seed=40))
    assert max(abs(v) for v in same) < 0.1 * min(shifted)  # unbiased: ~0, either sign, for one distribution
    assert 0 < min(shifted) and further > max(shifted)


def test_kid_on_real_digits_is_near_zero_between_unseen_halves_and_positive_for_blurred(split):
    # both halves are digits the classifier never trained on (its own training digits sit apart in its features)
    _, held_u8, _ = split
    held_u8 = held_u8[torch.randperm(len(held_u8), generator=torch.Generator().manual_seed(0))]  # sorted by class
    net = load_classifier("reward")
    a, b = batched(net, "features", held_u8[:500]), batched(net, "features", held_u8[500:])
    mild, strong = (batched(net, "features", gaussian_blur(to_float(held_u8[:500]), s)) for s in (1.0, 2.0))
    same = kid(a, b)
    assert abs(same) < 0.5 * kid(mild, b) and kid(mild, b) < 0.2 * kid(strong, b)  # measured: -4, 10, 156


def test_density_and_coverage_on_constructed_cases():
    real = gauss(600, d=2, seed=6)
    same = density_coverage(gauss(600, d=2, seed=7), real)
    core = density_coverage(gauss(600, d=2, scale=0.3, seed=8), real)  # only the typical digits: diversity lost
    half_off = density_coverage(torch.cat([gauss(300, d=2, seed=9), gauss(300, d=2, mean=6.0, seed=10)]), real)
    away = density_coverage(gauss(600, d=2, mean=6.0, seed=11), real)
    assert 0.8 < same[0] < 1.25 and same[1] > 0.9  # E[density] = 1, E[coverage] ~ 1 - 2^-k for one distribution
    assert core[0] > 0.9 * same[0] and core[1] < 0.6  # fidelity kept, coverage lost: the trade FID blurs
    assert half_off[0] == pytest.approx(same[0] / 2, rel=0.25) and half_off[1] > 0.8  # fidelity lost, coverage kept
    assert away == (0.0, 0.0)
    assert density_coverage(real, real)[1] == 1.0  # every real's ball holds the real itself


def test_weighted_entropy_with_unit_counts_is_digit_entropy():
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(0))
    logits[:80, 3] += 5  # an uneven mix
    ones = torch.ones(1, 200, dtype=torch.float64)
    assert float(weighted_entropy(logits.argmax(1), ones)[0]) == pytest.approx(digit_entropy(logits), rel=1e-12)
