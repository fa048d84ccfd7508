"""The latent environment: B episodes stepped at once in G's latent space.

State (z, t/T, goal one-hot); actions stop or +/- delta along K directions; reward r = Phi(z') - Phi(z) with
Phi(z) = logit D_bar(G(z)) - lambda 1/2 |z|^2 + beta log p_C(goal | G(z)). Rewards telescope: an episode's return is
Phi(z_T) - Phi(z_0), so stopping is optimal exactly when no remaining moves raise Phi.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .device import autocast
from .directions import action_moves

N_GOALS = 10


@dataclass
class Potential:
    """Phi over a batch of latents; one G and one D forward for the whole batch."""

    g: nn.Module
    d_bar: nn.Module
    lam: float
    beta: float = 0.0
    classifier: nn.Module | None = None
    amp: bool = False
    # What the Q-network sees besides z: "" (nothing), "image" (D_bar's penultimate features of G(z)), "score"
    # (Phi(z) and D_bar's logit: what the reward is made of) or "grad" (delta times the slope of Phi along each
    # direction: one backward pass through G and D_bar).
    features: str = ""
    directions: torch.Tensor | None = None  # needed for "grad"
    delta: float = 1.0

    def evaluate(self, z: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Phi, features or None) from one G and one D_bar forward (plus one backward for "grad")."""
        grad = self.features == "grad"
        z = z.detach().requires_grad_(grad)
        with torch.set_grad_enabled(grad), autocast(z.device, self.amp):
            x = self.g(z)
            h = self.d_bar.features(x)
            logit = self.d_bar.head(h).view(-1).float()
            phi = logit - self.lam * 0.5 * z.pow(2).sum(1)
            if self.beta > 0 and self.classifier is not None and bool((goal >= 0).any()):
                logp = F.log_softmax(self.classifier(x.float()), dim=1)
                logp = logp.gather(1, goal.clamp_min(0).view(-1, 1)).squeeze(1)
                phi = phi + self.beta * logp * (goal >= 0).float()  # no goal (-1): no class term
            feats = None
            if grad:  # inside the grad-enabled block: callers often run under no_grad
                (dz,) = torch.autograd.grad(phi.sum(), z)
                feats = self.delta * dz.float() @ self.directions.T
        if self.features == "image":
            feats = h.detach().flatten(1).float()
        elif self.features == "score":
            feats = torch.stack([phi.detach(), logit.detach()], 1)
        return phi.detach(), feats

    def __call__(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return self.evaluate(z, goal)[0]


def observe(z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor, horizon: int, feats: torch.Tensor | None = None
            ) -> torch.Tensor:
    """The Q-network's input: (z, t/T, goal one-hot or zeros[, image features])."""
    onehot = F.one_hot(goal.clamp_min(0), N_GOALS).float() * (goal >= 0).float().unsqueeze(1)
    parts = [z, (t.float() / horizon).unsqueeze(1), onehot]
    if feats is not None:
        parts.append(feats)
    return torch.cat(parts, dim=1)


def state_dim(z_dim: int, feat_dim: int = 0) -> int:
    return z_dim + 1 + N_GOALS + feat_dim


@dataclass
class Transition:
    z: torch.Tensor
    action: torch.Tensor
    z_next: torch.Tensor
    t: torch.Tensor
    done: torch.Tensor
    goal: torch.Tensor


class LatentEnv:
    """A vector of `n` latent episodes with auto-reset; keeps the recent final z's for D's refined fakes."""

    def __init__(self, potential: Potential, directions: torch.Tensor, delta: float, horizon: int, n: int,
                 gen: torch.Generator, goals: bool = False, final_pool: int = 1024):
        self.potential = potential
        self.directions = directions
        self.delta = delta
        self.horizon = horizon
        self.n = n
        self.gen = gen
        self.goals = goals
        self.device = directions.device
        z_dim = directions.shape[1]
        self.z = torch.zeros(n, z_dim, device=self.device)
        self.t = torch.zeros(n, dtype=torch.long, device=self.device)
        self.goal = torch.full((n,), -1, dtype=torch.long, device=self.device)
        self.phi = torch.zeros(n, device=self.device)
        self.feats: torch.Tensor | None = None
        self.ret = torch.zeros(n, device=self.device)
        self.final_z = torch.zeros(final_pool, z_dim, device=self.device)
        self.final_count = 0
        self.reset()

    def _sample(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(m, self.z.shape[1], generator=self.gen, device=self.gen.device).to(self.device)
        if self.goals:
            goal = torch.randint(0, N_GOALS, (m,), generator=self.gen, device=self.gen.device).to(self.device)
        else:
            goal = torch.full((m,), -1, dtype=torch.long, device=self.device)
        return z, goal

    def reset(self) -> torch.Tensor:
        self.z, self.goal = self._sample(self.n)
        self.t.zero_()
        self.ret.zero_()
        self.phi, self.feats = self.potential.evaluate(self.z, self.goal)
        return self.obs()

    def obs(self) -> torch.Tensor:
        return observe(self.z, self.t, self.goal, self.horizon, self.feats)

    def step(self, actions: torch.Tensor) -> tuple[Transition, torch.Tensor, list[float]]:
        """Apply actions; returns (transition, reward, returns of episodes that ended). Auto-resets ended episodes."""
        stop = actions == 0
        z_next = self.z + action_moves(actions, self.directions, self.delta)
        t_next = self.t + 1
        done = stop | (t_next >= self.horizon)
        n_done = int(done.sum())
        z_new, goal_new = self._sample(n_done)
        # One forward for the moved latents and the fresh starts together.
        phi_all, f_all = self.potential.evaluate(torch.cat([z_next, z_new]), torch.cat([self.goal, goal_new]))
        phi_next, phi_new = phi_all[: self.n], phi_all[self.n:]
        reward = torch.where(stop, torch.zeros_like(phi_next), phi_next - self.phi)
        phi_next = torch.where(stop, self.phi, phi_next)
        tr = Transition(self.z.clone(), actions.clone(), z_next.clone(), self.t.clone(), done.clone(),
                        self.goal.clone())
        self.ret += reward
        finished = self.ret[done].tolist()
        self._remember_final(z_next[done])
        # Advance, then reset the finished episodes in place.
        self.z, self.t, self.phi = z_next, t_next, phi_next
        self.z[done], self.goal[done], self.phi[done] = z_new, goal_new, phi_new
        if f_all is not None:
            self.feats = f_all[: self.n].clone()
            self.feats[done] = f_all[self.n:]
        self.t[done] = 0
        self.ret[done] = 0
        return tr, reward, finished

    def _remember_final(self, z: torch.Tensor) -> None:
        cap = self.final_z.shape[0]
        z = z[-cap:]
        idx = (self.final_count + torch.arange(z.shape[0], device=self.device)) % cap
        self.final_z[idx] = z
        self.final_count += z.shape[0]

    def sample_final(self, m: int, gen: torch.Generator) -> torch.Tensor | None:
        """m recent end-of-episode latents (None until some episodes have ended)."""
        have = min(self.final_count, self.final_z.shape[0])
        if have == 0:
            return None
        idx = torch.randint(0, have, (m,), generator=gen, device=gen.device).to(self.device)
        return self.final_z[idx]
