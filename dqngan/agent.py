"""Double DQN with a Huber loss, gradient clipping, a Polyak target network and an epsilon-greedy policy.

`dqn_step` is one agent step of the joint loop, in CleanRL's order: act -> store -> sample -> target -> loss -> step
-> sync. Losses stay on the device (the caller averages them and reads them once per log interval)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .env import LatentEnv
from .models import Polyak, QNetwork, frozen_copy
from .replay import ReplayBuffer


def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    frac = min(1.0, step / max(1, decay_steps))
    return start + frac * (end - start)


class DQNAgent:
    def __init__(self, state_dim: int, n_actions: int, hidden: int, lr: float, gamma: float, tau: float,
                 grad_clip: float, device: torch.device):
        self.q = QNetwork(state_dim, n_actions, hidden).to(device)
        self.q_target = frozen_copy(self.q)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=lr, **fast_adam(device))
        self.n_actions = n_actions
        self.gamma, self.tau, self.grad_clip = gamma, tau, grad_clip
        self._polyak = Polyak(self.q_target, self.q)
        self.grad_sync: Callable[[list[torch.Tensor]], None] | None = None  # averages gradients across ranks
    @classmethod
    def from_config(cls, cfg: Any, state_dim: int, device: torch.device) -> DQNAgent:
        return cls(state_dim, 2 * cfg.n_dirs + 1, cfg.q_hidden, cfg.q_lr, cfg.gamma, cfg.q_tau, cfg.grad_clip, device)

    # act
    @torch.no_grad()
    def act(self, obs: torch.Tensor, eps: float | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        greedy = self.q(obs).argmax(1)
        n = obs.shape[0]
        explore = torch.rand(n, generator=gen, device=obs.device) < eps
        random = torch.randint(0, self.n_actions, (n,), generator=gen, device=obs.device)
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
               done: torch.Tensor) -> torch.Tensor:
        y = self.target(reward, obs_next, done)
        q = self.q(obs).gather(1, action.view(-1, 1)).squeeze(1)
        return self._descend(F.smooth_l1_loss(q, y))

    def update_all(self, obs: torch.Tensor, reward: torch.Tensor, obs_next: torch.Tensor, done: torch.Tensor
                   ) -> torch.Tensor:
        """The same Double-DQN loss with a target for every action: reward/done are (B, A), obs_next (B*A, S)."""
        y = self.target(reward.flatten(), obs_next, done.flatten()).view_as(reward)
        return self._descend(F.smooth_l1_loss(self.q(obs), y))

    def _descend(self, loss: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:  # before clipping: every rank clips the same averaged gradient
            self.grad_sync(list(self.q.parameters()))
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), self.grad_clip, foreach=True)
        self.opt.step()
        return loss.detach()

    # sync
    def sync(self) -> None:
        self._polyak(self.tau)

    def set_lr(self, lr: float) -> None:
        set_lr(self.opt, lr)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """A new learning rate, in place when it is a device tensor (a captured CUDA graph reads that memory)."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def fast_adam(device: torch.device) -> dict[str, bool]:
    """Adam's fused kernel on CUDA (one launch for all tensors); the reference for-loop elsewhere."""
    return {"fused": True} if torch.device(device).type == "cuda" else {}


def dqn_step(agent: DQNAgent, env: LatentEnv, replay: ReplayBuffer, cfg: Any, eps: float | torch.Tensor,
             gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One agent step: every episode acts once, the transitions are stored, then `dqn_updates` DQN updates.
    Returns device scalars: "episode_return" (sum, count) of the episodes that ended and the mean "td_loss"."""
    # act
    actions = agent.act(env.obs(), eps, gen)
    # store (no reward: it is relabelled at sample time)
    tr, _, ended_sum, n_ended = env.step(actions)
    replay.add(tr)
    stats: dict[str, Any] = {"episode_return": (ended_sum, n_ended)}
    if len(replay) < max(cfg.learning_starts, cfg.q_batch) or cfg.dqn_updates == 0:
        return stats
    td = []
    for _ in range(cfg.dqn_updates):
        # sample
        b = replay.sample(cfg.q_batch, gen)
        # target -> loss -> step, on rewards recomputed with the current D_bar
        if cfg.q_targets == "all":  # a target for every action: the env is a known model
            td.append(agent.update_all(*env.all_successors(b.z, b.t, b.goal)))
        else:
            obs, reward, obs_next = env.relabel(b.z, b.action, b.z_next, b.t, b.goal)
            td.append(agent.update(obs, b.action, reward, obs_next, b.done))
        # sync
        agent.sync()
    stats["td_loss"] = torch.stack(td).mean()
    return stats
