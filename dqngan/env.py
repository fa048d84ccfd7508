"""The latent MDP, defined once: B episodes stepped at once in G's latent space.

State (z, t/T, goal one-hot); actions stop or +/- delta along K directions; reward r = Phi(z') - Phi(z) with
Phi(z) = logit D_bar(G(z)) - lambda 1/2 |z|^2 + beta log p_C(goal | G(z)). Rewards telescope: an episode's return is
Phi(z_T) - Phi(z_0), so stopping is optimal exactly when no remaining moves raise Phi.

Training (`LatentEnv.step`, `relabel`, `all_successors`), evaluation and every UI tab use the rules below
(`successors`, `step_reward`, `potential`, `rollout`), so they cannot disagree about the MDP. Shapes are static and
nothing here reads a value back to the host, so the training step can run as one CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .device import autocast

N_GOALS = 10


# ---------------------------------------------------------------------------------------------------- the rules
def no_goal(n: int, device: torch.device | str) -> torch.Tensor:
    """The goal of unconditional episodes (-1: no class term in Phi, a zero one-hot for Q)."""
    return torch.full((n,), -1, dtype=torch.long, device=device)


def action_table(directions: torch.Tensor, delta: float) -> torch.Tensor:
    """(2K+1, z_dim) displacement of each action: 0 = stop (no move), 2i+1 = +delta d_i, 2i+2 = -delta d_i."""
    k = directions.shape[0]
    table = torch.zeros(2 * k + 1, directions.shape[1], device=directions.device, dtype=directions.dtype)
    table[1::2] = delta * directions
    table[2::2] = -delta * directions
    return table


def action_axis(a: int) -> tuple[int, float]:
    """(direction index, sign) of a move action (a >= 1), the same layout as `action_table`."""
    return (a - 1) // 2, (1.0 if a % 2 == 1 else -1.0)


def successors(z: torch.Tensor, t: torch.Tensor, actions: torch.Tensor, table: torch.Tensor, horizon: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z', t', done) after `actions`: a move adds its displacement; stop, or the T-th move, ends the episode."""
    return z + table[actions], t + 1, (actions == 0) | (t + 1 >= horizon)


def step_reward(phi: torch.Tensor, phi_next: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Phi(z') - Phi(z); exactly 0 for stop (z' = z)."""
    return torch.where(actions == 0, torch.zeros_like(phi_next), phi_next - phi)


def potential(g: nn.Module, d_bar: nn.Module, z: torch.Tensor, goal: torch.Tensor, lam: float | torch.Tensor,
              beta: float | torch.Tensor = 0.0, classifier: nn.Module | None = None, amp: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Phi, D_bar logit, images G(z), D_bar's penultimate features) for one batch: one G and one D_bar forward.
    The goal term is added when a classifier is given. Differentiable in z when z requires grad and grad mode is
    on."""
    with autocast(z.device, amp):
        x = g(z)
        h = d_bar.features(x)
        logit = d_bar.head(h).view(-1).float()
        phi = logit - lam * 0.5 * z.pow(2).sum(1)
        if classifier is not None:
            # computed for every row and masked (no `any()` check: that would read a value back every call)
            logp = F.log_softmax(classifier(x.float()), dim=1).gather(1, goal.clamp_min(0).view(-1, 1)).squeeze(1)
            phi = phi + beta * torch.where(goal >= 0, logp, torch.zeros_like(logp))
    return phi, logit, x, h


def observe(z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor, horizon: int, feats: torch.Tensor | None = None
            ) -> torch.Tensor:
    """The Q-network's input: (z, t/T, goal one-hot or zeros[, features])."""
    # a comparison, not F.one_hot: one_hot reads the min and max back to check them; goal -1 gives all zeros
    onehot = (goal.unsqueeze(1) == torch.arange(N_GOALS, device=goal.device)).float()
    parts = [z, (t.float() / horizon).unsqueeze(1), onehot]
    if feats is not None:
        parts.append(feats)
    return torch.cat(parts, dim=1)


def state_dim(z_dim: int, feat_dim: int = 0) -> int:
    return z_dim + 1 + N_GOALS + feat_dim


@dataclass
class Trajectory:
    """A batch of rollouts: z_T, the actions of each step (0 once stopped) and the latents after each step."""

    z: torch.Tensor
    actions: list[torch.Tensor] = field(default_factory=list)
    path: list[torch.Tensor] = field(default_factory=list)

    @property
    def moves(self) -> torch.Tensor:
        """Moves made per sample (stops not counted)."""
        if not self.actions:
            return torch.zeros(self.z.shape[0], dtype=torch.long, device=self.z.device)
        return torch.stack(self.actions).ne(0).sum(0)


Policy = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (z, t, goal) -> actions


@torch.no_grad()
def rollout(policy: Policy, z0: torch.Tensor, goal: torch.Tensor, table: torch.Tensor, horizon: int,
            steps: int | None = None, early_exit: bool = True) -> Trajectory:
    """Run `policy` from z0 for up to `steps` (default T) moves; a sample that stops stays stopped.

    `early_exit` ends the loop once every sample has stopped: one host read-back per step, worth it for interactive
    and evaluation rollouts, where stopped samples would cost needless Q and Phi evaluations."""
    steps = horizon if steps is None else steps
    z = z0
    active = torch.ones(z0.shape[0], dtype=torch.bool, device=z0.device)
    out = Trajectory(z0)
    for t in range(steps):
        a = policy(z, torch.full_like(goal, t), goal)
        a = torch.where(active, a, torch.zeros_like(a))
        z = z + table[a]
        active = active & (a != 0)
        out.actions.append(a)
        out.path.append(z)
        if early_exit and not bool(active.any()):
            break
    out.z = z
    return out


# ---------------------------------------------------------------------------------------------------- Phi
@dataclass
class Potential:
    """Phi over a batch of latents, with the networks and weights of the run; one G and one D forward per batch."""

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
    directions: torch.Tensor | None = None  # needed for "grad"; the env's tensor, updated in place
    delta: float = 1.0
    weights: torch.Tensor | None = None  # (lam, beta) on the device, for a graphed step (see graphs.py)

    def set_weights(self, lam: float, beta: float) -> None:
        """New reward weights; in place on the device when a captured graph reads them from there."""
        self.lam, self.beta = lam, beta
        if self.weights is not None:
            self.weights[0].fill_(lam)
            self.weights[1].fill_(beta)

    def evaluate(self, z: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Phi, features or None) from one G and one D_bar forward (plus one backward for "grad")."""
        grad = self.features == "grad"
        z = z.detach().requires_grad_(grad)
        lam, beta = (self.lam, self.beta) if self.weights is None else (self.weights[0], self.weights[1])
        clf = self.classifier if self.beta > 0 else None  # the goal term is on or off: a plain flag, no read-back
        with torch.set_grad_enabled(grad):
            phi, logit, _, h = potential(self.g, self.d_bar, z, goal, lam, beta, clf, self.amp)
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


# ---------------------------------------------------------------------------------------------------- the env
@dataclass
class Transition:
    z: torch.Tensor
    action: torch.Tensor
    z_next: torch.Tensor
    t: torch.Tensor
    done: torch.Tensor
    goal: torch.Tensor


class LatentEnv:
    """A vector of `n` latent episodes with auto-reset; keeps the recent final z's for D's refined fakes.

    Static shapes throughout: every step draws n fresh starts and keeps them where an episode ended
    (`torch.where`), and the pool of final z's is a ring written at device-side offsets. State tensors are updated in
    place, so a captured CUDA graph keeps reading and writing the same memory."""

    def __init__(self, potential: Potential, directions: torch.Tensor, delta: float, horizon: int, n: int,
                 gen: torch.Generator, goals: bool = False, final_pool: int = 1024):
        self.potential = potential
        self.directions = directions.clone()
        self.potential.directions = self.directions  # one tensor, shared
        self.delta = delta
        self.table = action_table(self.directions, delta)
        self.horizon = horizon
        self.n = n
        self.gen = gen
        self.goals = goals
        self.device = directions.device
        z_dim = directions.shape[1]
        self.z = torch.zeros(n, z_dim, device=self.device)
        self.t = torch.zeros(n, dtype=torch.long, device=self.device)
        self.goal = no_goal(n, self.device)
        self.phi = torch.zeros(n, device=self.device)
        self.feats: torch.Tensor | None = None
        self.ret = torch.zeros(n, device=self.device)
        self.final_pool = final_pool
        self.final_z = torch.zeros(final_pool + 1, z_dim, device=self.device)  # the last row takes no-op writes
        self.final_count = torch.zeros((), dtype=torch.long, device=self.device)
        self.reset()

    def set_directions(self, directions: torch.Tensor) -> None:
        """New directions, copied in place (the potential shares the tensor; a captured graph keeps its address)."""
        self.directions.copy_(directions)
        self.table.copy_(action_table(self.directions, self.delta))

    def _sample(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(m, self.z.shape[1], generator=self.gen, device=self.device)
        if self.goals:
            goal = torch.randint(0, N_GOALS, (m,), generator=self.gen, device=self.device)
        else:
            goal = no_goal(m, self.device)
        return z, goal

    def reset(self) -> torch.Tensor:
        z, goal = self._sample(self.n)
        self.z.copy_(z)
        self.goal.copy_(goal)
        self.t.zero_()
        self.ret.zero_()
        phi, feats = self.potential.evaluate(self.z, self.goal)
        self.phi.copy_(phi)
        if self.feats is not None and feats is not None and self.feats.shape == feats.shape:
            self.feats.copy_(feats)
        else:
            self.feats = feats
        return self.obs()

    def obs(self) -> torch.Tensor:
        return observe(self.z, self.t, self.goal, self.horizon, self.feats)

    def step(self, actions: torch.Tensor) -> tuple[Transition, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply actions; returns (transition, reward, sum of the returns of the episodes that ended, how many ended),
        the last two as device scalars. Ended episodes restart in place."""
        n = self.n
        z_next, t_next, done = successors(self.z, self.t, actions, self.table, self.horizon)
        z_new, goal_new = self._sample(n)
        # One forward for the moved latents and the fresh starts together.
        phi_all, f_all = self.potential.evaluate(torch.cat([z_next, z_new]), torch.cat([self.goal, goal_new]))
        phi_next, phi_new = phi_all[:n], phi_all[n:]
        reward = step_reward(self.phi, phi_next, actions)
        phi_next = torch.where(actions == 0, self.phi, phi_next)
        tr = Transition(self.z.clone(), actions.clone(), z_next, self.t.clone(), done, self.goal.clone())
        ret = self.ret + reward
        ended_sum, n_ended = torch.where(done, ret, torch.zeros_like(ret)).sum(), done.sum()
        self._remember_final(z_next, done)
        # Advance, restarting the ended episodes.
        d1 = done.unsqueeze(1)
        self.z.copy_(torch.where(d1, z_new, z_next))
        self.goal.copy_(torch.where(done, goal_new, self.goal))
        self.phi.copy_(torch.where(done, phi_new, phi_next))
        if f_all is not None:
            self.feats.copy_(torch.where(d1, f_all[n:], f_all[:n]))
        self.t.copy_(torch.where(done, torch.zeros_like(t_next), t_next))
        self.ret.copy_(torch.where(done, torch.zeros_like(ret), ret))
        return tr, reward, ended_sum, n_ended

    def _remember_final(self, z: torch.Tensor, done: torch.Tensor) -> None:
        pool = self.final_pool
        slot = (self.final_count + done.long().cumsum(0) - 1) % pool
        self.final_z.index_copy_(0, torch.where(done, slot, torch.full_like(slot, pool)), z)
        self.final_count += done.sum()

    def sample_final(self, m: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(m recent end-of-episode latents, whether any episode has ended yet: a device bool)."""
        have = self.final_count.clamp(max=self.final_pool)
        idx = (torch.rand(m, generator=gen, device=self.device) * have.clamp_min(1)).long()
        return self.final_z[torch.minimum(idx, have.clamp_min(1) - 1)], have > 0

    # ------------------------------------------------------------------------------------------------ replayed
    def relabel(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor, t: torch.Tensor,
                goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(obs, reward, obs') of stored transitions, with rewards Phi(z') - Phi(z) recomputed by the current D_bar
        (and the current features when Q sees them): replay never serves stale rewards. One G+D forward in all."""
        n = z.shape[0]
        phi, f = self.potential.evaluate(torch.cat([z, z_next]), torch.cat([goal, goal]))
        reward = step_reward(phi[:n], phi[n:], action)
        obs = observe(z, t, goal, self.horizon, None if f is None else f[:n])
        obs_next = observe(z_next, t + 1, goal, self.horizon, None if f is None else f[n:])
        return obs, reward, obs_next

    def all_successors(self, z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every action's outcome at each state (the env is a known, deterministic model): (obs (n, S),
        reward (n, A), obs' (n*A, S), done (n, A)), with one G+D forward for all n*(A+1) latents."""
        n, k1 = z.shape[0], self.table.shape[0]
        actions = torch.arange(k1, device=z.device).repeat(n)  # (n*A,) action a for state i at i*A + a
        goal_next = goal.repeat_interleave(k1, 0)
        z_next, t_next, done = successors(z.repeat_interleave(k1, 0), t.repeat_interleave(k1, 0), actions,
                                          self.table, self.horizon)
        phi, f = self.potential.evaluate(torch.cat([z, z_next]), torch.cat([goal, goal_next]))
        reward = step_reward(phi[:n].repeat_interleave(k1, 0), phi[n:], actions)
        obs = observe(z, t, goal, self.horizon, None if f is None else f[:n])
        obs_next = observe(z_next, t_next, goal_next, self.horizon, None if f is None else f[n:])
        return obs, reward.view(n, k1), obs_next, done.view(n, k1)
