"""Replay memory of (z, a, z', t, done, goal). Rewards are not stored: they are recomputed with the current D_bar
when a batch is sampled ("reward relabelling"), so they never go stale as D moves.

The write position lives on the device and indices are drawn as floor(U * size), so adding and sampling read nothing
back to the host. The fill level is also kept as a Python int: every add stores the same number of rows, so it is
known without looking."""

from __future__ import annotations

import torch

from .env import Transition

FIELDS = ("z", "action", "z_next", "t", "done", "goal")


class ReplayBuffer:
    def __init__(self, capacity: int, z_dim: int, device: torch.device):
        self.capacity = capacity
        self.device = device
        self.data = {
            "z": torch.zeros(capacity, z_dim, device=device),
            "action": torch.zeros(capacity, dtype=torch.long, device=device),
            "z_next": torch.zeros(capacity, z_dim, device=device),
            "t": torch.zeros(capacity, dtype=torch.long, device=device),
            "done": torch.zeros(capacity, dtype=torch.bool, device=device),
            "goal": torch.zeros(capacity, dtype=torch.long, device=device),
        }
        self.pos_t = torch.zeros((), dtype=torch.long, device=device)  # next write index
        self.size_t = torch.zeros((), dtype=torch.long, device=device)
        self.added = 0  # transitions ever stored (a plain counter: graph replays advance it)

    @property
    def size(self) -> int:
        return min(self.added, self.capacity)

    def __len__(self) -> int:
        return self.size

    @property
    def pos(self) -> int:
        return int(self.pos_t)

    def add(self, tr: Transition) -> None:
        n = tr.z.shape[0]
        idx = (self.pos_t + torch.arange(n, device=self.device)) % self.capacity
        for name in FIELDS:
            self.data[name].index_copy_(0, idx, getattr(tr, name).to(self.device))
        self.pos_t.copy_((self.pos_t + n) % self.capacity)
        self.added += n
        self.size_t.clamp_(max=self.capacity - n).add_(n)  # min(size + n, capacity), on the device

    def sample(self, batch: int, gen: torch.Generator) -> Transition:
        size = self.size_t.clamp_min(1)
        idx = torch.minimum((torch.rand(batch, generator=gen, device=self.device) * size).long(), size - 1)
        return Transition(**{name: self.data[name][idx] for name in FIELDS})

    def state_dict(self) -> dict[str, torch.Tensor]:
        # Only the filled part is saved, so a checkpoint stays small early in training.
        n = self.size
        out = {f"replay.{k}": v[:n].clone() for k, v in self.data.items()}
        out["replay.meta"] = torch.tensor([self.pos, self.size, self.capacity])
        return out

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        pos, size, cap = (int(v) for v in sd["replay.meta"])
        if cap != self.capacity:
            raise ValueError(f"replay capacity {cap} in the checkpoint differs from buffer_size={self.capacity}")
        for k in FIELDS:
            self.data[k][:size] = sd[f"replay.{k}"].to(self.device)
        self.pos_t.fill_(pos)
        self.size_t.fill_(size)
        self.added = size
