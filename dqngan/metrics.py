"""Set metrics on a frozen MNIST classifier's features: FID, KID, density and coverage; and digit-histogram metrics.

Inception-FID is meaningless on MNIST, so FID here is the Frechet distance between Gaussian fits of MetricNet's
64-d penultimate features. It has no universal scale (calibrate with the ladder in dqngan/assets/classifiers.json) and
is biased in N: scores are only comparable at the same N, which is why FIDScorer fixes N once for reals and fakes.

`Reference` scores a fake set against fixed real features in any feature space, also under resampling weights
(bootstrap counts, one row per replicate): FID, KID (Binkowski et al. 2018: unbiased MMD^2 with the cubic polynomial
kernel, no Gaussian assumption, unbiased in N; here on features standardised by the reals) and density / coverage
(Naeem et al. 2020: k-NN balls around the reals; density sees fidelity, coverage sees how much of the real manifold
the fakes reach, so a method that trades diversity for fidelity shows up as density kept or up, coverage down).
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


def poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's kernel k(x, y) = (x.y / d + 1)^3 between the rows of x (N, d) and y (M, d)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


ROWS_PER_BLOCK = 1024  # kernel and distance matrices are built this many fakes at a time: flat memory up to N = 10 000


class Reference:
    """Fixed real features (M, d) and every statistic of them the fake-set metrics need, computed once.

    `scores(fake, counts)` evaluates FID, KID, density and coverage of the fake features (N, d) for each row of
    `counts` (B, N): how often each fake is drawn in a resample (a bootstrap replicate; all ones = the plain set).
    Replicate b of every method uses the same row, so differences between methods are paired on the same z."""

    def __init__(self, real: torch.Tensor, k: int = 5):
        raw = torch.as_tensor(real, dtype=torch.float64)
        self.k = k
        self.mu = raw.mean(0)
        self.sigma = torch.cov(raw.T)
        w, v = torch.linalg.eigh((self.sigma + self.sigma.T) / 2)
        self.sqrt_sigma = (v * w.clamp(min=0).sqrt()) @ v.T  # A = S_r^(1/2): tr sqrt(S_r S) = tr sqrt(A S A)
        # KID, density and coverage work on features standardised by the reals' mean and std per unit: raw
        # classifier features reach ~10, and a few large units would dominate the cubic kernel and the k-NN balls
        # (KID then swung by thousands of times its own size between near-identical sets)
        self.scale = raw.std(0).clamp(min=1e-6)
        r = self.real = self.standardise(raw)
        m, total, radii = len(r), 0.0, []
        for lo in range(0, m, ROWS_PER_BLOCK):
            blk = r[lo:lo + ROWS_PER_BLOCK]
            k_blk = poly_kernel(blk, r)
            total += float(k_blk.sum() - k_blk.diagonal(offset=lo).sum())
            # the k-th nearest neighbour among the *other* reals (the nearest, at distance 0, is the point itself)
            radii.append(torch.cdist(blk, r).topk(k + 1, dim=1, largest=False).values[:, k])
        self.kid_rr = total / (m * (m - 1))  # unbiased: no i = j pairs
        self.radii = torch.cat(radii)

    def scores(self, fake: torch.Tensor, counts: torch.Tensor | None = None, fid_only: bool = False
               ) -> dict[str, torch.Tensor]:
        """{"fid", "kid", "density", "coverage"} (only "fid" with fid_only): (B,) float64 tensors, one value per
        row of counts (None = the plain set, B = 1)."""
        x = torch.as_tensor(fake, dtype=torch.float64)
        c = torch.ones(1, len(x), dtype=torch.float64) if counts is None else counts.to(torch.float64)
        out = {"fid": self._fid(x, c)}
        return out if fid_only else {**out, **self._kid_density_coverage(x, c)}

    def _fid(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n = c.sum(1)
        mu = c @ x / n[:, None]  # (B, d) weighted means
        xc = x - x.mean(0)  # centred once: the weighted second moments below lose no precision
        mc = mu - x.mean(0)
        d = x.shape[1]
        # weighted second moments of every replicate as one matrix product: counts (B, N) @ outer products (N, d*d),
        # built ROWS_PER_BLOCK samples at a time
        second = torch.zeros(len(c), d * d, dtype=torch.float64)
        for lo in range(0, len(x), ROWS_PER_BLOCK):
            xb = xc[lo:lo + ROWS_PER_BLOCK]
            second += c[:, lo:lo + ROWS_PER_BLOCK] @ (xb.unsqueeze(2) * xb.unsqueeze(1)).reshape(len(xb), d * d)
        second = second.view(-1, d, d)
        cov = (second - n[:, None, None] * mc.unsqueeze(2) * mc.unsqueeze(1)) / (n[:, None, None] - 1)
        a = self.sqrt_sigma
        tr_covmean = torch.linalg.eigvalsh(a @ cov @ a).clamp(min=0).sqrt().sum(1)
        fid = ((mu - self.mu) ** 2).sum(1) + self.sigma.trace() + cov.diagonal(dim1=1, dim2=2).sum(1) - 2 * tr_covmean
        return fid

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu) / self.scale

    def _kid_density_coverage(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.standardise(x)
        n, b = c.sum(1), len(c)
        quad = torch.zeros(b, dtype=torch.float64)  # c^T K_xx c, accumulated one block of rows at a time
        cross = torch.zeros(len(x), dtype=torch.float64)  # mean_j k(x_i, r_j)
        in_balls = torch.zeros(len(x), dtype=torch.float64)  # how many real k-NN balls hold fake i (density)
        reached = torch.zeros(len(self.real), b, dtype=torch.float64)  # fakes drawn inside each real's ball
        drawn = (c > 0).to(torch.float64)
        diag = torch.empty(len(x), dtype=torch.float64)
        for lo in range(0, len(x), ROWS_PER_BLOCK):
            blk = slice(lo, lo + ROWS_PER_BLOCK)
            k_blk = poly_kernel(x[blk], x)
            quad += ((c @ k_blk.T) * c[:, blk]).sum(1)
            diag[blk] = k_blk.diagonal(offset=lo)
            cross[blk] = poly_kernel(x[blk], self.real).mean(1)
            inside = (torch.cdist(self.real, x[blk]) < self.radii[:, None]).to(torch.float64)  # (M, rows)
            in_balls[blk] = inside.sum(0)
            reached += inside @ drawn[:, blk].T
        # unbiased in the spirit of the U-statistic: pairs of *distinct draws of distinct fakes* only, so a fake drawn
        # twice in a replicate is not compared with itself (all ones: exactly the usual unbiased estimate)
        same = (c ** 2) @ diag
        kid_xx = (quad - same) / (n ** 2 - (c ** 2).sum(1))
        kid = kid_xx + self.kid_rr - 2 * (c @ cross) / n
        density = (c @ in_balls) / (self.k * n)
        coverage = (reached > 0).to(torch.float64).mean(0)
        return {"kid": kid, "density": density, "coverage": coverage}


def kid(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel) between two feature sets; ~0 for samples of
    one distribution (it can be slightly negative), > 0 when they differ."""
    return float(Reference(real).scores(fake)["kid"][0])


def density_coverage(fake: torch.Tensor, real: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020 with k nearest neighbours: both ~1 when fake ~ real."""
    s = Reference(real, k).scores(fake)
    return float(s["density"][0]), float(s["coverage"][0])


def weighted_entropy(labels: torch.Tensor, counts: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """digit_entropy of predicted labels (N,) for each row of resampling counts (B, N): (B,) float64."""
    onehot = F.one_hot(labels.long().cpu(), n_classes).to(torch.float64)
    p = counts.to(torch.float64) @ onehot
    p = p / p.sum(1, keepdim=True)
    return -(p * p.clamp(min=1e-300).log()).sum(1) / math.log(n_classes)


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
