"""Double DQN with a Huber loss, gradient clipping, a Polyak target network and an epsilon-greedy policy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import QNetwork, frozen_copy, polyak_update


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    frac = min(1.0, step / max(1, decay_steps))
    return start + frac * (end - start)


class DQNAgent:
    def __init__(self, state_dim: int, n_actions: int, hidden: int, lr: float, gamma: float, tau: float,
                 grad_clip: float, device: torch.device):
        self.q = QNetwork(state_dim, n_actions, hidden).to(device)
        self.q_target = frozen_copy(self.q)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.n_actions = n_actions
        self.gamma, self.tau, self.grad_clip = gamma, tau, grad_clip

    # act
    @torch.no_grad()
    def act(self, obs: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
        greedy = self.q(obs).argmax(1)
        n = obs.shape[0]
        explore = torch.rand(n, generator=gen, device=gen.device).to(obs.device) < eps
        random = torch.randint(0, self.n_actions, (n,), generator=gen, device=gen.device).to(obs.device)
        return torch.where(explore, random, greedy)

    # target
    @torch.no_grad()
    def target(self, reward: torch.Tensor, obs_next: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Double DQN: the online net picks a* = argmax Q(s', .), the target net evaluates it."""
        a_star = self.q(obs_next).argmax(1, keepdim=True)
        q_next = self.q_target(obs_next).gather(1, a_star).squeeze(1)
        return reward + self.gamma * (~done).float() * q_next

    # loss + step
    def update(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, obs_next: torch.Tensor,
               done: torch.Tensor) -> float:
        y = self.target(reward, obs_next, done)
        q = self.q(obs).gather(1, action.view(-1, 1)).squeeze(1)
        return self._descend(F.smooth_l1_loss(q, y))

    def update_all(self, obs: torch.Tensor, reward: torch.Tensor, obs_next: torch.Tensor, done: torch.Tensor
                   ) -> float:
        """The same Double-DQN loss with a target for every action: reward/done are (B, A), obs_next (B*A, S)."""
        y = self.target(reward.flatten(), obs_next, done.flatten()).view_as(reward)
        return self._descend(F.smooth_l1_loss(self.q(obs), y))

    def _descend(self, loss: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), self.grad_clip)
        self.opt.step()
        return float(loss.detach())

    # sync
    def sync(self) -> None:
        polyak_update(self.q_target, self.q, self.tau)

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
