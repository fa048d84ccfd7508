"""GAN losses on raw discriminator outputs (logits / critic scores): non-saturating, WGAN-GP and hinge."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, real_target: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator loss; `real_target` holds (smoothed) labels for real samples in the non-saturating loss."""
    if kind == "ns":
        tgt = torch.ones_like(real) if real_target is None else real_target
        return F.binary_cross_entropy_with_logits(real, tgt) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake))
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # -log D(G(z)): no saturation
    if kind in ("wgan-gp", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator | None = None
                     ) -> torch.Tensor:
    """WGAN-GP: (||grad_x D(x_hat)|| - 1)^2 on random interpolates between real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=gen)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = d(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
