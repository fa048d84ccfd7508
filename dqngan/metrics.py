"""Classifier-FID and digit-histogram metrics on a frozen MNIST classifier (MetricNet by default).

Inception-FID is meaningless on MNIST, so FID here is the Frechet distance between Gaussian fits of MetricNet's
64-d penultimate features. It has no universal scale (calibrate with the ladder in dqngan/assets/classifiers.json) and
is biased in N: scores are only comparable at the same N, which is why FIDScorer fixes N once for reals and fakes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dqngan.classifiers import ARCHITECTURES
from dqngan.data import ASSETS_DIR, to_float

BATCH = 500
KINDS = {"metric": "MetricNet", "reward": "RewardNet"}


def load_classifier(kind: str, device: str | torch.device = "cpu") -> nn.Module:
    """The trained "metric" or "reward" classifier from dqngan/assets/, in eval mode with gradients off."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if kind not in KINDS:
        raise ValueError(f"unknown classifier kind {kind!r}; choose one of {sorted(KINDS)}")
    path = ASSETS_DIR / f"classifier_{kind}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run python scripts/train_classifiers.py")
    with safe_open(str(path), framework="pt") as f:
        arch = (f.metadata() or {}).get("arch", KINDS[kind])
    if arch != KINDS[kind]:
        raise ValueError(f"{path} holds a {arch}, expected {KINDS[kind]}")
    model = ARCHITECTURES[arch]()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.to(device).eval().requires_grad_(False)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """Accept uint8 (N, 28, 28) images or float (N, 1, 28, 28) in [-1, 1]."""
    return to_float(x) if x.dtype == torch.uint8 else x.to(torch.float32).reshape(-1, 1, 28, 28)


@torch.no_grad()
def batched(model: nn.Module, fn: str, x: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """Run `model.<fn>` ("features" or "forward") over x in batches of 500; returns a CPU tensor."""
    call = getattr(model, fn)
    out = [call(_as_float(x[i:i + BATCH]).to(device)).cpu() for i in range(0, len(x), BATCH)]
    return torch.cat(out)


def feature_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    f = np.asarray(features.numpy() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), without scipy.

    tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2): A S2 A is symmetric PSD, so eigvalsh is stable and
    needs none of sqrtm's complex-part clean-up; tiny negative eigenvalues from round-off are clipped to 0.
    """
    mu1, mu2, s1, s2 = (np.asarray(a, dtype=np.float64) for a in (mu1, mu2, sigma1, sigma2))
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


class FIDScorer:
    """Classifier-FID against a fixed subset of n real images; every score uses exactly n fakes (same-N rule)."""

    def __init__(self, real_images_uint8: torch.Tensor, n: int = 1000, device: str | torch.device = "cpu",
                 classifier: nn.Module | None = None):
        if len(real_images_uint8) < n:
            raise ValueError(f"FIDScorer needs at least n={n} real images, got {len(real_images_uint8)}")
        self.n, self.device = n, device
        self.model = classifier if classifier is not None else load_classifier("metric", device)
        # A seeded subset, so the reference statistics are identical in every run and process.
        idx = torch.randperm(len(real_images_uint8), generator=torch.Generator().manual_seed(0))[:n]
        self.real_idx = idx.sort().values
        self.mu, self.sigma = feature_stats(self.features(real_images_uint8[self.real_idx]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 64) classifier features of uint8 (N, 28, 28) or float (N, 1, 28, 28) images."""
        return batched(self.model, "features", x, self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 10) classifier logits, for digit_histogram / digit_entropy."""
        return batched(self.model, "forward", x, self.device)

    def score(self, fake: torch.Tensor) -> float:
        """FID of exactly n fake images (uint8 or float in [-1, 1]) against the cached real statistics."""
        if len(fake) != self.n:
            raise ValueError(f"FID is only comparable at a fixed N: got {len(fake)} images, this scorer uses {self.n}")
        return frechet_distance(*feature_stats(self.features(fake)), self.mu, self.sigma)


def digit_histogram(logits: torch.Tensor) -> np.ndarray:
    """Fraction of samples predicted as each class, shape (n_classes,), sums to 1."""
    counts = torch.bincount(logits.argmax(dim=1).cpu(), minlength=logits.shape[1]).double()
    return (counts / counts.sum()).numpy()


def digit_entropy(logits: torch.Tensor) -> float:
    """Entropy of the predicted-class histogram / log(n_classes): 1 = all classes equally often, 0 = one class."""
    p = digit_histogram(logits)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(logits.shape[1]))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur float (N, 1, H, W) images (a rung of the FID calibration ladder); replicate padding keeps the border."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.device)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))  # separable: rows, then columns
    return F.conv2d(x, k.view(1, 1, -1, 1))
