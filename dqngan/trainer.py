"""The joint training loop: {n_critic D steps on real vs G(z) mixed with agent-refined G(z_T)}, {G step}, {DQN steps}.

One `Trainer` runs synchronously (`run`, for the CLI) or in a background thread (`start / pause / resume / step / stop`,
for the app). Other threads talk to it only through those commands, `set` (live knobs) and `snapshot()`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from . import losses
from .agent import DQNAgent, linear_epsilon
from .config import LIVE_KEYS, Config, ConfigError
from .data import BatchSampler, ImageData, load_dataset, to_uint8
from .device import autocast, pick_device
from .directions import action_labels, action_moves, compute_directions
from .env import LatentEnv, Potential, observe, state_dim
from .history import History
from .models import Discriminator, Generator, dcgan_init, frozen_copy, polyak_update
from .replay import ReplayBuffer

N_FIXED = 64  # fixed noise for sample grids and Q-value probes (an 8x8 grid)
GOOD_EVERY = 25  # steps between in-memory copies of the last finite state
MAX_GRIDS = 120  # sample-grid timeline length (thinned like the scalar history)
VIEWS = {"z": "", "features": "image", "score": "score", "grad": "grad"}  # q_state -> Potential.features
PARTS = ("joint", "d", "g", "agent")  # what one step trains (train_step's step modes)


class Trainer:
    def __init__(self, cfg: Config, device: str | torch.device = "auto", data: ImageData | None = None):
        self.cfg = cfg.validate()
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self._data = data  # loaded on first use, so sampling from a checkpoint needs no dataset
        self._sampler: BatchSampler | None = None
        self.gen = torch.Generator().manual_seed(cfg.seed)  # every random draw of the run, so resume is exact
        dev = self.device

        torch.manual_seed(cfg.seed)  # weight initialisation only
        self.G = Generator(cfg.z_dim, cfg.width).to(dev)
        self.D = Discriminator(cfg.width, cfg.d_norm).to(dev)
        dcgan_init(self.G)
        dcgan_init(self.D)
        self.G_ema = frozen_copy(self.G)
        self.D_bar = frozen_copy(self.D)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))

        n_actions = 2 * cfg.n_dirs + 1
        self.labels = action_labels(cfg.n_dirs)
        feat_dim = {"z": 0, "features": self.D.feature_dim, "score": 2, "grad": cfg.n_dirs}[cfg.q_state]
        self.agent = DQNAgent(state_dim(cfg.z_dim, feat_dim), n_actions, cfg.q_hidden, cfg.q_lr, cfg.gamma, cfg.q_tau,
                              cfg.grad_clip, dev)
        self.replay = ReplayBuffer(cfg.buffer_size, cfg.z_dim, dev)
        self.reward_classifier = self._maybe_reward_classifier()
        self.potential = Potential(self.G_ema, self.D_bar, cfg.lam_prior, cfg.beta_goal, self.reward_classifier,
                                   amp=cfg.amp, features=VIEWS[cfg.q_state], delta=cfg.delta)
        directions = compute_directions(cfg.directions, self.G_ema, cfg.n_dirs, self.gen)
        self.potential.directions = directions
        self.env = LatentEnv(self.potential, directions, cfg.delta, cfg.horizon, cfg.n_envs, self.gen,
                             goals=cfg.beta_goal > 0)
        self.fixed_z = torch.randn(N_FIXED, cfg.z_dim, generator=self.gen).to(dev)

        self.step_count = 0
        self.agent_steps = 0
        self.elapsed = 0.0  # seconds spent training, accumulated across resumes
        self.history = History(cfg.history_len)
        self.grids: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._acc: dict[str, list[float]] = {}
        self.last_stats: dict[str, float] = {}
        self._fid: Any = None  # FIDScorer, built on first use

        # control state (guarded by _cv); models are guarded by _lock
        self._lock = threading.RLock()
        self._hist_lock = threading.Lock()  # history and grids only: snapshots never wait for a training step
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._status = "idle"
        self._budget: int | None = None
        self._part = "joint"  # what the thread's steps train (step(n, part)); start() trains everything
        self._stop = False
        self._busy = False  # a step is in flight in the thread
        self._waiting = 0  # other threads waiting for the models: the training loop lets them in between steps
        self.error: str | None = None
        self.error_trace: str | None = None
        self.message: str | None = None
        self._version = 0
        self._rate = 0.0
        self._good: dict | None = None

    @property
    def data(self) -> ImageData:
        if self._data is None:
            self._data = load_dataset(self.cfg.dataset)
        return self._data

    @property
    def sampler(self) -> BatchSampler:
        if self._sampler is None:
            self._sampler = BatchSampler(self.data, self.gen)
        return self._sampler

    # ------------------------------------------------------------------------------------------------ one step
    def train_step(self, part: str = "joint") -> dict[str, float]:
        """One GAN iteration, plus an agent step every `agent_every` iterations (`part="joint"`).

        The step modes a class takes one piece at a time: "d" = the n_critic D updates alone (and D-bar's Polyak
        update), "g" = one G update alone (and G_ema's), "agent" = one env step for every episode and its DQN
        update(s) alone. Each counts as a step, so every chart moves."""
        cfg = self.cfg
        if part not in PARTS:
            raise ValueError(f"unknown step part {part!r}; choose from {', '.join(PARTS)}")
        if part == "g" and cfg.g_every == 0:
            raise ConfigError("G is frozen in this run (train G is off): tick train G to step it")
        if self.step_count % GOOD_EVERY == 0 and self._last_finite() and self._weights_finite():
            self._good = self._capture()
        if part == "joint":
            stats = self._gan_step()
            polyak_update(self.G_ema, self.G, 1.0 - cfg.ema_decay)
            polyak_update(self.D_bar, self.D, cfg.dbar_tau)
            if self._agent_active() and self.step_count % cfg.agent_every == 0:
                stats.update(self._agent_step())
        elif part == "d":
            stats = self._d_steps()
            polyak_update(self.D_bar, self.D, cfg.dbar_tau)
        elif part == "g":
            stats = self._g_step()
            polyak_update(self.G_ema, self.G, 1.0 - cfg.ema_decay)
        else:
            stats = self._agent_step()
        self.step_count += 1
        if self.step_count % cfg.dirs_every == 0 and cfg.directions in ("sefa", "pca"):
            self._set_directions(compute_directions(cfg.directions, self.G_ema, cfg.n_dirs, self.gen))
        self._record(stats)
        return stats

    @contextlib.contextmanager
    def model_access(self) -> Iterator[None]:
        """Exclusive use of the models between training steps. Python locks are not fair, so a busy training thread
        could otherwise re-take the lock step after step and starve the app's explorer calls."""
        with self._cv:
            self._waiting += 1
        try:
            with self._lock:
                yield
        finally:
            with self._cv:
                self._waiting -= 1
                self._cv.notify_all()

    def _set_directions(self, dirs: torch.Tensor) -> None:
        self.env.directions = self.potential.directions = dirs

    def _agent_active(self) -> bool:
        return self.cfg.agent_every > 0 and self.step_count >= self.cfg.agent_start

    def _gan_step(self) -> dict[str, float]:
        stats = self._d_steps()
        if self.cfg.g_every == 0 or self.step_count % self.cfg.g_every:
            return stats  # G frozen (or not its turn): D and the agent keep learning
        stats.update(self._g_step())
        return stats

    def _d_steps(self) -> dict[str, float]:
        """n_critic D updates on real digits vs G's fakes (a refined_frac of them agent-refined)."""
        cfg, dev, bs = self.cfg, self.device, self.cfg.batch_size
        stats: dict[str, float] = {}
        for _ in range(cfg.n_critic):
            real = self.sampler.next(bs).to(dev)
            z = self._randn(bs)
            n_ref = int(round(cfg.refined_frac * bs)) if self._agent_active() else 0
            z_ref = self.env.sample_final(n_ref, self.gen) if n_ref else None
            if z_ref is not None:
                z = torch.cat([z_ref, z[n_ref:]])  # D also sees what the agent makes, so it can't stay fooled
            # With G frozen, D is fitted to what is actually sampled: G_ema in eval mode.
            gen_model = self.G_ema if cfg.g_every == 0 else self.G
            with torch.no_grad(), autocast(dev, cfg.amp):
                fake = gen_model(z).float()
            with autocast(dev, cfg.amp):
                d_real, d_fake = self.D(real).float(), self.D(fake).float()
            target = None
            if cfg.real_label < 1.0:  # one-sided label smoothing
                target = cfg.real_label + (1 - cfg.real_label) * torch.rand(bs, generator=self.gen).to(dev)
            loss_d = losses.d_loss(cfg.loss, d_real, d_fake, target)
            if cfg.loss == "wgan-gp":
                gp_gen = None if dev.type != "cpu" else self.gen
                loss_d = loss_d + cfg.gp_weight * losses.gradient_penalty(self.D, real, fake, gp_gen)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        stats["d_loss"] = float(loss_d.detach())
        stats["d_real"] = float(d_real.detach().mean())
        if z_ref is not None:
            stats["d_refined"] = float(d_fake[:n_ref].detach().mean())
            stats["d_fake"] = float(d_fake[n_ref:].detach().mean())
        else:
            stats["d_fake"] = float(d_fake.detach().mean())
        return stats

    def _g_step(self) -> dict[str, float]:
        """One G update against the current D."""
        cfg, dev = self.cfg, self.device
        z = self._randn(cfg.batch_size)
        with autocast(dev, cfg.amp):
            loss_g = losses.g_loss(cfg.loss, self.D(self.G(z)).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"g_loss": float(loss_g.detach())}

    def _agent_step(self) -> dict[str, float]:
        """act -> store -> (sample -> relabel -> Double-DQN target -> loss -> Polyak sync) x dqn_updates."""
        cfg = self.cfg
        eps = self.epsilon()
        actions = self.agent.act(self.env.obs(), eps, self.gen)
        tr, _, finished = self.env.step(actions)
        self.replay.add(tr)
        self.agent_steps += 1
        stats: dict[str, float] = {"epsilon": eps}
        if finished:
            stats["episode_return"] = float(np.mean(finished))
        if len(self.replay) >= max(cfg.learning_starts, cfg.q_batch):
            td = []
            for _ in range(cfg.dqn_updates):
                b = self.replay.sample(cfg.q_batch, self.gen)
                if cfg.q_targets == "all":
                    td.append(self._update_all_actions(b.z, b.t, b.goal))
                else:
                    reward, f, f_next = self.relabel(b.z, b.action, b.z_next, b.goal)
                    obs = observe(b.z, b.t, b.goal, cfg.horizon, f)
                    obs_next = observe(b.z_next, b.t + 1, b.goal, cfg.horizon, f_next)
                    td.append(self.agent.update(obs, b.action, reward, obs_next, b.done))
                self.agent.sync()
            if td:
                stats["td_loss"] = float(np.mean(td))
        return stats

    def _update_all_actions(self, z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor) -> float:
        """Q-learning with a target for every action at each sampled state: the environment is a known,
        deterministic model, so all 2K+1 successors can be scored at once (one G+D forward for all)."""
        cfg = self.cfg
        n, k1 = z.shape[0], 2 * cfg.n_dirs + 1
        actions = torch.arange(k1, device=z.device).repeat(n)  # (n*A,) action a for state i at i*A + a
        z_next = z.repeat_interleave(k1, 0) + action_moves(actions, self.env.directions, cfg.delta)
        goal_next = goal.repeat_interleave(k1, 0)
        phi, f = self.potential.evaluate(torch.cat([z, z_next]), torch.cat([goal, goal_next]))
        reward = (phi[n:].view(n, k1) - phi[:n, None]).flatten()
        reward = torch.where(actions == 0, torch.zeros_like(reward), reward)
        t_next = t.repeat_interleave(k1, 0) + 1
        done = (actions == 0) | (t_next >= cfg.horizon)
        obs = observe(z, t, goal, cfg.horizon, None if f is None else f[:n])
        obs_next = observe(z_next, t_next, goal_next, cfg.horizon, None if f is None else f[n:])
        return self.agent.update_all(obs, reward.view(n, k1), obs_next, done.view(n, k1))

    def relabel(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor, goal: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Rewards Phi(z') - Phi(z) recomputed with the current D_bar (stop moves nothing: reward 0), and the
        current image features of z and z' when the Q-network uses them. One G and one D forward in all."""
        n = z.shape[0]
        phi, f = self.potential.evaluate(torch.cat([z, z_next]), torch.cat([goal, goal]))
        reward = torch.where(action == 0, torch.zeros(n, device=z.device), phi[n:] - phi[:n])
        return reward, (None if f is None else f[:n]), (None if f is None else f[n:])

    def epsilon(self) -> float:
        c = self.cfg
        return linear_epsilon(self.agent_steps, c.eps_start, c.eps_end, c.eps_decay)

    def _randn(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.gen).to(self.device)

    # ------------------------------------------------------------------------------------------------ sampling
    @torch.no_grad()
    def refine(self, z: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Greedy rollout of the agent from z: returns z_T and the actions taken at each step (0 once stopped)."""
        with self.model_access():
            return self._refine(z, goal, steps)

    def _refine(self, z: torch.Tensor, goal: torch.Tensor | None, steps: int | None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        cfg = self.cfg
        steps = cfg.horizon if steps is None else steps
        z = z.to(self.device)
        goal = torch.full((z.shape[0],), -1, dtype=torch.long, device=self.device) if goal is None else goal
        active = torch.ones(z.shape[0], dtype=torch.bool, device=self.device)
        actions_taken = []
        for t in range(steps):
            a = self._q(z, torch.full_like(goal, t), goal).argmax(1)
            a = torch.where(active, a, torch.zeros_like(a))
            actions_taken.append(a)
            z = z + action_moves(a, self.env.directions, cfg.delta)
            active &= a != 0
            if not active.any():
                break
        return z, actions_taken

    @torch.no_grad()
    def generate(self, z: torch.Tensor, refine: bool = False, goal: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images (N, 28, 28) from G_ema, optionally after the agent's greedy refinement."""
        with self.model_access():
            if refine:
                z, _ = self.refine(z, goal)
            out = []
            for chunk in z.to(self.device).split(500):
                with autocast(self.device, self.cfg.amp):
                    out.append(self.G_ema(chunk).float())
            return to_uint8(torch.cat(out).cpu())

    @torch.no_grad()
    def probe_q(self) -> list[float]:
        """Mean Q per action over the fixed probe states (fixed noise, t = 0, no goal)."""
        goal = torch.full((N_FIXED,), -1, dtype=torch.long, device=self.device)
        return self._q(self.fixed_z, torch.zeros_like(goal), goal).mean(0).tolist()

    def _q(self, z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Q(s, .) at states (z, t, goal), observed the way the agent observes them during training."""
        feats = self.potential.evaluate(z, goal)[1] if self.potential.features else None
        with torch.no_grad():
            return self.agent.q(observe(z, t, goal, self.cfg.horizon, feats))

    # ------------------------------------------------------------------------------------------------ explorer API
    def _goals(self, goal: int | None, n: int) -> torch.Tensor:
        return torch.full((n,), -1 if goal is None else int(goal), dtype=torch.long, device=self.device)

    def q_values(self, z: torch.Tensor, t: int = 0, goal: int | None = None) -> torch.Tensor:
        """Q-values (N, 2K+1) of every action at latents z, step t, optional goal digit. Safe during training."""
        with self.model_access():
            z = z.to(self.device)
            g = self._goals(goal, z.shape[0])
            return self._q(z, torch.full_like(g, int(t)), g).float().cpu()

    def score(self, z: torch.Tensor, goal: int | None = None) -> torch.Tensor:
        """The potential Phi(z) the agent is rewarded by (batched). Safe during training."""
        with self.model_access():
            out = [self.potential(c.to(self.device), self._goals(goal, c.shape[0])).float().cpu()
                   for c in z.split(512)]
            return torch.cat(out)

    def directions(self) -> torch.Tensor:
        """The agent's K unit directions in z (a copy)."""
        with self.model_access():
            return self.env.directions.detach().float().cpu().clone()

    def fid(self, n: int | None = None) -> float | None:
        """FID of G_ema on the metric classifier's features (MNIST-like data only), or None."""
        if self._fid is None:
            from .metrics import FIDScorer, load_classifier
            if self.data.name not in ("mnist5k", "mnist"):
                return None
            try:
                clf = load_classifier("metric", self.device)
            except FileNotFoundError:
                return None
            self._fid = FIDScorer(self.data.images, n=n or self.cfg.fid_n, device=self.device, classifier=clf)
        z = torch.randn(self._fid.n, self.cfg.z_dim, generator=torch.Generator().manual_seed(12345))
        return float(self._fid.score(self.generate(z)))

    # ------------------------------------------------------------------------------------------------ logging
    def _record(self, stats: dict[str, float]) -> None:
        cfg, step = self.cfg, self.step_count
        for k, v in stats.items():
            self._acc.setdefault(k, []).append(v)
        if step % cfg.log_every == 0:
            means = {k: float(np.mean(v)) for k, v in self._acc.items()}
            self._acc = {}
            if self._agent_active():  # no agent acting, no exploration rate to plot (a flat line to redraw)
                means["epsilon"] = self.epsilon()
            if self.agent_steps:
                means["q_probe"] = self.probe_q()
            with self._hist_lock:
                self.history.add(step, **means)
        if step % cfg.grid_every == 0 or step == 1:
            self._record_grid()
        if cfg.fid_every and step % cfg.fid_every == 0:
            fid = self.fid()
            with self._hist_lock:
                self.history.add(step, fid=fid)
        self._version += 1

    def _record_grid(self) -> None:
        raw = self.generate(self.fixed_z).numpy()
        refined = self.generate(self.fixed_z, refine=True).numpy() if self.agent_steps else raw
        with self._hist_lock:
            self.grids.append((self.step_count, raw, refined))
            if len(self.grids) > MAX_GRIDS:  # thin, but always keep the newest grid
                self.grids = self.grids[::2] + ([self.grids[-1]] if len(self.grids) % 2 == 0 else [])

    def _last_finite(self) -> bool:
        last = {k: v[-1] for k, v in self._acc.items() if v}
        return all(math.isfinite(x) for x in last.values())

    def _weights_finite(self) -> bool:
        """An update can blow up the weights after a finite loss; such a state must not become the restore point."""
        return all(bool(torch.isfinite(p).all()) for m in self._modules().values() for p in m.parameters())

    # ------------------------------------------------------------------------------------------------ safety net
    def _capture(self) -> dict:
        return {
            "modules": {k: copy.deepcopy(m.state_dict()) for k, m in self._modules().items()},
            "optims": {k: copy.deepcopy(o.state_dict()) for k, o in self._optims().items()},
            "step": self.step_count, "agent_steps": self.agent_steps, "gen": self.gen.get_state(),
        }

    def _restore(self, good: dict) -> None:
        for k, m in self._modules().items():
            m.load_state_dict(good["modules"][k])
        for k, o in self._optims().items():
            o.load_state_dict(good["optims"][k])
        self.step_count, self.agent_steps = good["step"], good["agent_steps"]
        self.gen.set_state(good["gen"])
        with self._hist_lock:
            self.history.truncate(self.step_count)
        self._set_directions(compute_directions(self.cfg.directions, self.G_ema, self.cfg.n_dirs, self.gen))
        self.env.reset()
        self._acc = {}

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "D_bar": self.D_bar, "Q": self.agent.q,
                "Q_target": self.agent.q_target}

    def _optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d, "opt_q": self.agent.opt}

    def _safe_step(self) -> bool:
        """Train one step; on a non-finite loss, rewind to the last good state and report. Returns False then."""
        with self._lock:
            t0 = time.perf_counter()
            stats = self.train_step(self._part)
            dt = time.perf_counter() - t0
            self.elapsed += dt
            # the thread's slow speed waits step_delay after each step: steps/s is what the run really makes
            wall = dt + (self.cfg.step_delay if threading.current_thread() is self._thread else 0.0)
            self._rate = 1.0 / wall if self._rate == 0 else 0.95 * self._rate + 0.05 / wall
            bad = [k for k, v in stats.items() if not math.isfinite(v)]
            with self._hist_lock:
                self.last_stats = dict(stats)  # this very step's values (the slow-motion narration shows them)
            if not bad:
                return True
            at = self.step_count
            if self._good is not None:
                self._restore(self._good)
            self.message = (f"non-finite {', '.join(bad)} at step {at}: paused and restored the last good "
                            f"weights (step {self.step_count})")
            self._version += 1
            return False

    # ------------------------------------------------------------------------------------------------ control
    def run(self, steps: int | None = None, seconds: float | None = None,
            on_step: Callable[[Trainer], None] | None = None) -> bool:
        """Train synchronously until `steps` more steps or `seconds` pass. Returns False if training diverged."""
        t_end = None if seconds is None else time.monotonic() + seconds
        done = 0
        while (steps is None or done < steps) and (t_end is None or time.monotonic() < t_end):
            if not self._safe_step():
                return False
            done += 1
            if on_step is not None:
                on_step(self)
        return True

    def start(self) -> None:
        """Train in a background thread until paused or stopped."""
        self._command("running", None)

    resume = start

    def step(self, n: int = 1, part: str = "joint") -> None:
        """Train exactly n more steps in the background thread, then pause. `part`: see train_step."""
        if n < 1:
            raise ValueError("step(n) needs n >= 1")
        if part not in PARTS:
            raise ValueError(f"unknown step part {part!r}; choose from {', '.join(PARTS)}")
        if part == "g" and self.cfg.g_every == 0:  # refused here, before the thread would stop on it
            raise ConfigError("G is frozen in this run (train G is off): tick train G to step it")
        self._command("running", n, part)

    def pause(self) -> None:
        with self._cv:
            if self._status == "running":
                self._status, self._budget = "paused", None
                self._version += 1
                self._cv.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cv:
            if self._status != "error":
                self._status = "stopped"
            self._version += 1

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the thread is idle: not running and no step in flight. True if it got there in time."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._status == "running" or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _command(self, status: str, budget: int | None, part: str = "joint") -> None:
        with self._cv:
            self._status, self._budget, self._stop, self._part = status, budget, False, part
            self.error = self.error_trace = None
            self._version += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="dqngan-trainer", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _loop(self) -> None:
        try:
            while True:
                with self._cv:
                    while self._status != "running" and not self._stop:
                        self._cv.wait()
                    if self._stop:
                        return
                    while self._waiting and not self._stop:  # let waiting readers in first
                        self._cv.wait(0.5)
                    self._busy = True
                try:
                    ok = self._safe_step()
                finally:
                    with self._cv:
                        self._busy = False
                with self._cv:
                    if not ok:
                        self._status, self._budget = "paused", None
                    elif self._budget is not None:
                        self._budget -= 1
                        if self._budget <= 0:
                            self._status, self._budget = "paused", None
                    self._cv.notify_all()
                    if self.cfg.step_delay > 0 and self._status == "running":
                        self._cv.wait(self.cfg.step_delay)  # slow speed; a pause or stop wakes it at once
        except Exception as exc:  # reported in the snapshot, never swallowed
            with self._cv:
                self.error = f"{type(exc).__name__}: {exc}"
                self.error_trace = traceback.format_exc()
                self._status = "error"
                self._version += 1
                self._cv.notify_all()

    def set(self, **knobs: Any) -> None:
        """Change live knobs (see config.LIVE_KEYS) between steps; anything else raises ConfigError."""
        frozen = sorted(set(knobs) - LIVE_KEYS)
        if frozen:
            raise ConfigError(f"{', '.join(frozen)} cannot change during a run (reset to change it)")
        with self.model_access():
            self.cfg = self.cfg.replace(**knobs)
            c = self.cfg
            for group in self.opt_g.param_groups:
                group["lr"] = c.lr_g
            for group in self.opt_d.param_groups:
                group["lr"] = c.lr_d
            self.agent.set_lr(c.q_lr)
            if c.beta_goal > 0 and self.reward_classifier is None:
                self.reward_classifier = self.potential.classifier = self._maybe_reward_classifier()
            self.potential.lam, self.potential.beta = c.lam_prior, c.beta_goal
            self.env.goals = c.beta_goal > 0
            self._version += 1

    def _maybe_reward_classifier(self) -> torch.nn.Module | None:
        if self.cfg.beta_goal <= 0:
            return None
        from .metrics import load_classifier
        return load_classifier("reward", self.device)

    @property
    def status(self) -> str:
        return self._status

    def snapshot(self) -> dict[str, Any]:
        """A consistent, copy-on-read view for other threads (the app's poll). `version` changes on every update."""
        with self._cv:
            status, error, trace, message = self._status, self.error, self.error_trace, self.message
        with self._hist_lock:  # never the model lock: a poll must not wait for a training step
            return {
                "version": self._version, "status": status, "error": error, "error_trace": trace,
                "message": message, "step": self.step_count, "agent_steps": self.agent_steps,
                "steps_per_s": self._rate, "elapsed": self.elapsed, "device": str(self.device),
                "config": self.cfg.to_dict(), "action_labels": list(self.labels),
                "history": self.history.to_dict(), "grids": list(self.grids), "last_stats": dict(self.last_stats),
            }
