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
    batched,
    digit_entropy,
    digit_histogram,
    feature_stats,
    frechet_distance,
    gaussian_blur,
    load_classifier,
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
