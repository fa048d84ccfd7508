"""Pure nn.Modules: the 28x28 DCGAN generator and discriminator, and the Q-network. No I/O here."""

from __future__ import annotations

import copy

import torch
from torch import nn


def _ch(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


class Generator(nn.Module):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]; the pytorch/examples cpp/dcgan 28x28 shapes, scaled by width."""

    def __init__(self, z_dim: int = 100, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = _ch(256, width), _ch(128, width), _ch(64, width)
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, c1, 4, 1, 0, bias=False), nn.BatchNorm2d(c1), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(c1, c2, 3, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(True),  # 7x7
            nn.ConvTranspose2d(c2, c3, 4, 2, 1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(True),  # 14x14
            nn.ConvTranspose2d(c3, 1, 4, 2, 1, bias=False), nn.Tanh(),  # 28x28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))

    @property
    def first_layer(self) -> nn.ConvTranspose2d:
        """The linear map z -> 4x4 features that SeFa factorises."""
        return self.net[0]


class Discriminator(nn.Module):
    """image (N, 1, 28, 28) -> logit (N,); `features` gives the penultimate activations."""

    def __init__(self, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        c1, c2, c3 = _ch(64, width), _ch(128, width), _ch(256, width)

        def norm_layer(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 14x14
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False), norm_layer(c2), nn.LeakyReLU(0.2, True),  # 7x7
            nn.Conv2d(c2, c3, 4, 2, 1, bias=False), norm_layer(c3), nn.LeakyReLU(0.2, True),  # 3x3
        )
        self.head = nn.Conv2d(c3, 1, 3, 1, 0)  # 1x1; bias so the logit can centre
        self.feature_dim = c3 * 3 * 3

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).view(-1)


class QNetwork(nn.Module):
    """MLP from the state (z, t/T, goal one-hot) to one Q-value per action (2K+1)."""

    def __init__(self, state_dim: int, n_actions: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, n_actions),
        )

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def frozen_copy(module: nn.Module) -> nn.Module:
    """An eval-mode copy without gradients, for EMA / Polyak targets."""
    c = copy.deepcopy(module).eval()
    for p in c.parameters():
        p.requires_grad_(False)
    return c


class Polyak:
    """target <- (1 - tau) target + tau source over all parameters and float buffers (batch-norm statistics) in one
    fused `_foreach_lerp_` (integer buffers are copied). The tensor lists are built once: a per-tensor Python loop
    launches ~40 kernels per step on a GPU."""

    def __init__(self, target: nn.Module, source: nn.Module):
        pairs = list(zip(target.parameters(), source.parameters()))
        pairs += [(t, s) for t, s in zip(target.buffers(), source.buffers()) if t.dtype.is_floating_point]
        self.t_float, self.s_float = [t for t, _ in pairs], [s for _, s in pairs]
        ints = [(t, s) for t, s in zip(target.buffers(), source.buffers()) if not t.dtype.is_floating_point]
        self.t_int, self.s_int = [t for t, _ in ints], [s for _, s in ints]

    @torch.no_grad()
    def __call__(self, tau: float) -> None:
        torch._foreach_lerp_(self.t_float, self.s_float, tau)
        if self.t_int:
            torch._foreach_copy_(self.t_int, self.s_int)


def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """One-off Polyak update (training loops keep a `Polyak` instead: its tensor lists are built once)."""
    Polyak(target, source)(tau)
