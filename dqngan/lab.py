"""A trained DQN-GAN in one object, loaded in one line: `Lab.from_pretrained("OWNER/NAME")` (or a local folder).

It samples digits, lets the agent refine them, steers them towards a goal digit, and saves or pushes itself back, in
the shape of huggingface_hub's ModelHubMixin (`from_pretrained`, `save_pretrained`, `push_to_hub`). Underneath it is
the checkpoint folder the CLI writes (safetensors + JSON), so repos pushed with `dqngan push` load too; pulls refuse
pickle files, and a token is only passed through, never stored.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .trainer import Trainer


class Lab:
    """A GAN and its latent-steering agent. Images are uint8 arrays (N, 28, 28)."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | os.PathLike, *, revision: str | None = None,
                        token: str | None = None, device: str = "auto",
                        cache_dir: str | os.PathLike | None = None) -> Lab:
        """A local checkpoint folder, or a Hub repo id (downloaded into the HF cache, checked, pickle-free)."""
        path = Path(repo_id_or_path)
        if path.is_dir():
            return cls(load_checkpoint(path, device=device))
        from . import hub

        folder = hub.pull_checkpoint(str(repo_id_or_path), revision=revision, token=token, cache_dir=cache_dir)
        return cls(load_checkpoint(folder, device=device))

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write the checkpoint (weights and training state, no replay memory: small enough for the Hub)."""
        return save_checkpoint(self.trainer, save_directory, include_replay=False)

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    revision: str | None = None, commit_message: str | None = None) -> str:
        """Upload as one commit with a generated model card; returns the commit URL."""
        from . import hub

        with tempfile.TemporaryDirectory(prefix="dqngan-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "checkpoint")
            return hub.push_checkpoint(folder, repo_id, token=token, private=private, revision=revision,
                                       message=commit_message)

    # ------------------------------------------------------------------------------------------------ using it
    @property
    def goal_only(self) -> bool:
        """The agent was trained with a goal in every episode (beta_goal > 0): it has never seen a no-goal state."""
        return self.trainer.cfg.beta_goal > 0

    def noise(self, n: int = 64, seed: int = 0) -> torch.Tensor:
        """The latents z ~ N(0, I) of `seed` (the same for sample, refine and steer, so they compare)."""
        return torch.randn(n, self.trainer.cfg.z_dim, generator=torch.Generator().manual_seed(seed))

    def sample(self, n: int = 64, seed: int = 0) -> np.ndarray:
        """G's own samples (the EMA generator), without the agent."""
        return self.trainer.generate(self.noise(n, seed)).numpy()

    def refine(self, n: int = 64, seed: int = 0) -> np.ndarray:
        """The same z after the agent's greedy moves towards images the slow discriminator scores higher."""
        if self.goal_only:
            raise ValueError(f"this agent was trained only with goal digits (beta_goal={self.trainer.cfg.beta_goal:g}):"
                             " use steer(goal); without a goal its moves are unreliable")
        return self.trainer.generate(self.noise(n, seed), refine=True).numpy()

    def steer(self, goal: int, n: int = 64, seed: int = 0) -> np.ndarray:
        """The same z after the agent's moves towards digit `goal` (a goal-conditioned agent only)."""
        if not self.goal_only:
            raise ValueError("this agent was trained without goals (beta_goal=0): use refine()")
        if not 0 <= int(goal) <= 9:
            raise ValueError(f"a goal is a digit 0-9, got {goal!r}")
        g = torch.full((n,), int(goal), dtype=torch.long, device=self.trainer.device)
        return self.trainer.generate(self.noise(n, seed), refine=True, goal=g).numpy()

    def __repr__(self) -> str:
        c = self.trainer.cfg
        return (f"Lab(step={self.trainer.step_count}, dataset={c.dataset!r}, width={c.width}, "
                f"agent={'goal-conditioned' if self.goal_only else 'refining'}, device={self.trainer.device})")
