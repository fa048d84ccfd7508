"""K unit directions in z along which the agent moves: SeFa, GANSpace-style PCA, random or coordinate axes."""

from __future__ import annotations

import torch

from .models import Generator


@torch.no_grad()
def sefa(g: Generator, k: int) -> torch.Tensor:
    """Closed form (Shen & Zhou 2021): top right-singular vectors of G's first layer seen as a map z -> 4x4 features."""
    w = g.first_layer.weight.float()  # (z_dim, c1, 4, 4)
    a = w.reshape(w.shape[0], -1).T  # (c1*16, z_dim)
    a = a / a.norm(dim=0, keepdim=True).clamp_min(1e-12)  # SeFa normalises each z-coordinate's column
    _, _, vh = torch.linalg.svd(a.cpu(), full_matrices=False)
    return vh[:k].to(w.device)


@torch.no_grad()
def pca(g: Generator, k: int, gen: torch.Generator, n: int = 4096) -> torch.Tensor:
    """GANSpace: PCA of the first block's activations over n samples, regressed back to z (z is isotropic)."""
    device = g.first_layer.weight.device
    z = torch.randn(n, g.z_dim, generator=gen, device=gen.device).to(device)
    was_training = g.training
    g.eval()
    h = g.net[:3](z.view(n, -1, 1, 1)).flatten(1)  # after the first BN + ReLU, where the map is non-linear
    g.train(was_training)
    h = h - h.mean(0)
    _, _, vh = torch.linalg.svd(h.cpu(), full_matrices=False)
    coords = h.cpu() @ vh[:k].T  # (n, k) principal coordinates
    b = torch.linalg.lstsq(coords, z.cpu()).solution  # z ~ coords @ b
    return (b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(device)


def compute_directions(kind: str, g: Generator, k: int, gen: torch.Generator) -> torch.Tensor:
    """(k, z_dim) unit vectors; with z ~ N(0, I) each has standard deviation 1, so a step of delta is delta sigma_k."""
    z_dim = g.z_dim
    device = g.first_layer.weight.device
    if k > z_dim:
        raise ValueError(f"n_dirs={k} exceeds z_dim={z_dim}")
    if kind == "sefa":
        return sefa(g, k)
    if kind == "pca":
        return pca(g, k, gen)
    if kind == "random":
        q, _ = torch.linalg.qr(torch.randn(z_dim, k, generator=gen, device=gen.device))
        return q.T.contiguous().to(device)
    if kind == "axis":
        return torch.eye(z_dim, device=device)[:k]
    raise ValueError(f"unknown directions {kind!r}")


def action_labels(k: int) -> list[str]:
    """Action 0 is stop; action 2i+1 is +delta along direction i, 2i+2 is -delta."""
    labels = ["stop"]
    for i in range(k):
        labels += [f"+d{i + 1}", f"-d{i + 1}"]
    return labels


def action_moves(actions: torch.Tensor, dirs: torch.Tensor, delta: float) -> torch.Tensor:
    """The z displacement of each action (zero for stop): rows of env.action_table, the one definition."""
    from .env import action_table

    return action_table(dirs, delta)[actions]
