"""The joint algorithm: {n_critic D steps on real vs G(z) mixed with agent-refined G(z_T)}, {G step}, {DQN step}.

A `Trainer` holds the models, optimizers, env, replay and the run's random generator, and knows nothing of threads,
locks or the UI: `train_step()` is one iteration, `state_dict()` / `load_state_dict()` are its saveable state, and
the read methods (`generate`, `refine`, `q_values`, `score`, `fid`) take no locks. `dqngan.runner.Runner` runs it in
a background thread for the app; the CLI calls `run()` directly.

The step lives on the device: data, noise and every random draw come from one generator on the run's device (its
state is checkpointed, so resume is exact), shapes are static, and step statistics are summed on the device and read
back once per `log_every` steps, together with the non-finite check. So a GPU never waits on Python mid-step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import losses
from .agent import DQNAgent, dqn_step, fast_adam, linear_epsilon, set_lr
from .config import LIVE_KEYS, Config, ConfigError
from .data import BatchSampler, ImageData, load_dataset, to_uint8
from .device import autocast, pick_device
from .directions import action_labels, compute_directions
from .distributed import SEED_STRIDE, Dist
from .env import LatentEnv, Potential, Trajectory, no_goal, observe, rollout, state_dim
from .history import History
from .models import Discriminator, Generator, Polyak, dcgan_init, frozen_copy
from .readbacks import to_host
from .replay import ReplayBuffer

ENGINE = 2  # bumped when the same seed gives different draws (2: device generator, static-shape env and replay)
N_FIXED = 64  # fixed noise for sample grids and Q-value probes (an 8x8 grid)
GOOD_EVERY = 25  # steps between in-memory copies of the last finite state
GAN_MACRO = 8  # GAN iterations per macro-step while no agent acts
MAX_GRIDS = 120  # sample-grid timeline length (thinned like the scalar history)
VIEWS = {"z": "", "features": "image", "score": "score", "grad": "grad"}  # q_state -> Potential.features
PARTS = ("joint", "d", "g", "agent")  # what one step trains (train_step's step modes)
MODULES = ("G", "G_ema", "D", "D_bar", "Q", "Q_target")
OPTIMS = ("opt_g", "opt_d", "opt_q")
AGENT_PARTS = ("Q", "Q_target", "opt_q")


class Trainer:
    def __init__(self, cfg: Config, device: str | torch.device = "auto", data: ImageData | None = None,
                 dist: Dist | None = None):
        self.cfg = cfg.validate()
        self.device = dev = device if isinstance(device, torch.device) else pick_device(device)
        self._data = data  # loaded on first use, so sampling from a checkpoint needs no dataset
        self._sampler: BatchSampler | None = None
        self.dist = dist  # several processes (torchrun): see distributed.py
        self.rank_seed = cfg.seed + (dist.rank * SEED_STRIDE if dist else 0)
        self.gen = torch.Generator(device=dev).manual_seed(self.rank_seed)  # every random draw of the run (rank)

        torch.manual_seed(cfg.seed)  # weight initialisation only
        self.G = Generator(cfg.z_dim, cfg.width).to(dev)
        self.D = Discriminator(cfg.width, cfg.d_norm).to(dev)
        dcgan_init(self.G)
        dcgan_init(self.D)
        self.G_ema = frozen_copy(self.G)
        self.D_bar = frozen_copy(self.D)
        adam = {"betas": (cfg.beta1, cfg.beta2), **fast_adam(dev)}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, **adam)
        self._ema_g, self._polyak_d = Polyak(self.G_ema, self.G), Polyak(self.D_bar, self.D)

        self.labels = action_labels(cfg.n_dirs)
        feat_dim = {"z": 0, "features": self.D.feature_dim, "score": 2, "grad": cfg.n_dirs}[cfg.q_state]
        self.agent = DQNAgent.from_config(cfg, state_dim(cfg.z_dim, feat_dim), dev)
        self.replay = ReplayBuffer(cfg.buffer_size, cfg.z_dim, dev)
        self.reward_classifier = self._maybe_reward_classifier()
        self.potential = Potential(self.G_ema, self.D_bar, cfg.lam_prior, cfg.beta_goal, self.reward_classifier,
                                   amp=cfg.amp, features=VIEWS[cfg.q_state], delta=cfg.delta)
        directions = compute_directions(cfg.directions, self.G_ema, cfg.n_dirs, self.gen)
        self.env = LatentEnv(self.potential, directions, cfg.delta, cfg.horizon, cfg.n_envs, self.gen,
                             goals=cfg.beta_goal > 0)
        self.fixed_z = torch.randn(N_FIXED, cfg.z_dim, generator=self.gen, device=dev)

        self.step_count = 0
        self.agent_steps = 0
        self.elapsed = 0.0  # seconds spent training, accumulated across resumes
        self.history = History(cfg.history_len)
        self.grids: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.record_version = 0  # bumped whenever history or grids change (the runner republishes them then)
        self.last_stats: dict[str, float] = {}  # the latest step's values, as of the latest read-back
        self.message: str | None = None  # the last non-finite rewind, for the user
        self.notes: list[str] = []  # said once when loading (e.g. an older engine's checkpoint)
        self._acc: dict[str, torch.Tensor] = {}  # step statistics since the last read-back, summed on the device
        self._counts: dict[str, int] = {}  # steps summed per statistic (known on the host)
        self._lastv: dict[str, torch.Tensor] = {}  # the latest step's value of each statistic, on the device
        self._last_keys: set[str] = set()  # the statistics the latest step produced
        self._graphs: Any = None  # graphs.GraphedSteps, built on first use on CUDA
        if dist is not None:
            self.agent.grad_sync = dist.sync_grads
            # BatchNorm running statistics, averaged before G_ema and D-bar (the reward) copy them
            self._bn = [b for m in (self.G, self.D) for b in m.buffers() if b.dtype.is_floating_point]
            self.broadcast_models()
            self.env.reset()  # the episodes of this rank, scored with rank 0's networks and directions
        self._eps_t: torch.Tensor | None = None  # epsilon on the device, for graph replays
        self._good: dict | None = None
        self._fid: Any = None  # FIDScorer, built on first use

    @property
    def data(self) -> ImageData:
        if self._data is None:
            self._data = load_dataset(self.cfg.dataset)
        return self._data

    @property
    def sampler(self) -> BatchSampler:
        if self._sampler is None:
            self._sampler = BatchSampler(self.data, self.gen, self.device)
        return self._sampler

    # ------------------------------------------------------------------------------------------------ one step
    def train_step(self, part: str = "joint") -> bool:
        """One GAN iteration, plus an agent step every `agent_every` iterations (`part="joint"`).

        The step modes a class takes one piece at a time: "d" = the n_critic D updates alone (and D-bar's Polyak
        update), "g" = one G update alone (and G_ema's), "agent" = one env step for every episode and its DQN
        update(s) alone. Each counts as a step, so every chart moves.

        Returns False when the periodic check found a non-finite value and the run was rewound to its last good
        state (`message` says so); True otherwise."""
        cfg = self.cfg
        if part not in PARTS:
            raise ValueError(f"unknown step part {part!r}; choose from {', '.join(PARTS)}")
        if part == "g" and cfg.g_every == 0:
            raise ConfigError("G is frozen in this run (train G is off): tick train G to step it")
        if self._good is None:
            self._capture()  # the starting state is the first restore point
        t0 = time.perf_counter()
        self._last_keys = set()
        self._iteration(part, self.step_count, self.epsilon())
        self.step_count += 1
        self.elapsed += time.perf_counter() - t0
        return self._after(self.step_count - 1, self.step_count)

    def _iteration(self, part: str, step: int, eps: float | torch.Tensor) -> None:
        """The device work of one step (`step`: its index, which decides G's and the agent's turns). Python state
        it changes is only counters (`_host_state`), so a captured CUDA graph can replay it (see graphs.py)."""
        cfg = self.cfg
        if part == "joint":
            g_turn = bool(cfg.g_every) and step % cfg.g_every == 0
            self._d_steps(last_phase=not g_turn)
            if g_turn:
                self._g_step()
            self._ema_g(1.0 - cfg.ema_decay)
            self._polyak_d(cfg.dbar_tau)
            if self._agent_active(step) and step % cfg.agent_every == 0:
                self._agent_step(eps)
        elif part == "d":
            self._d_steps(last_phase=True)
            self._polyak_d(cfg.dbar_tau)
        elif part == "g":
            self._g_step()
            self._ema_g(1.0 - cfg.ema_decay)
        else:
            self._agent_step(eps)

    def broadcast_models(self) -> None:
        """Rank 0's networks, directions and probe noise on every rank (at start and after a resume)."""
        tensors = [t for m in self.modules().values() for t in (*m.parameters(), *m.buffers())]
        self.dist.broadcast([*tensors, self.env.directions, self.fixed_z])
        self.env.set_directions(self.env.directions)

    # ------------------------------------------------------------------------------------------------ macro-steps
    def macro_length(self) -> int:
        """Steps in one macro-step: an agent step and the GAN iterations up to the next (8 GAN steps without one)."""
        return self.cfg.agent_every if self._agent_active(self.step_count) else GAN_MACRO

    def macro_body(self, eps: float | torch.Tensor) -> None:
        """The device work of one macro-step from the current step: what graphs.GraphedSteps captures."""
        for i in range(self.macro_length()):
            self._iteration("joint", self.step_count + i, eps)

    def macro_step(self) -> bool:
        """One macro-step, eagerly; the same updates, in the same order, as `macro_length()` calls of train_step.
        Logging, grids, FID and direction recomputes run after it, for any interval boundary it crossed."""
        if self._good is None:
            self._capture()
        t0, start, m = time.perf_counter(), self.step_count, self.macro_length()
        self._last_keys = set()
        self.macro_body(self.epsilon())
        self.step_count += m
        self.elapsed += time.perf_counter() - t0
        return self._after(start, self.step_count)

    def advance(self, max_steps: int | None = None) -> tuple[bool, int]:
        """Train the next unit: one graphed macro-step on CUDA when one fits (see graphs.py), else one eager step.
        Returns (no rewind happened, steps made)."""
        start = self.step_count
        g = self.graphs
        ok = g.run() if g is not None and g.ready(max_steps) else self.train_step()
        return ok, max(0, self.step_count - start)

    @property
    def graphs(self) -> Any:
        """The CUDA-graph runner (None off CUDA, with cuda_graphs=false or in a distributed run)."""
        # Not with several processes yet: NCCL all-reduces inside a captured graph are untested here.
        if self._graphs is None and self.device.type == "cuda" and self.cfg.cuda_graphs and self.dist is None:
            from .graphs import GraphedSteps
            self._graphs = GraphedSteps(self)
        return self._graphs

    def _host_state(self) -> dict[str, Any]:
        """The Python counters the step's device work advances (replays of a captured graph advance them by the
        difference one capture made)."""
        return {"agent_steps": self.agent_steps, "replay_added": self.replay.added, "counts": dict(self._counts),
                "last_keys": set(self._last_keys)}

    def _set_host_state(self, st: dict[str, Any]) -> None:
        self.agent_steps, self.replay.added = st["agent_steps"], st["replay_added"]
        self._counts, self._last_keys = dict(st["counts"]), set(st["last_keys"])

    def _agent_active(self, step: int | None = None) -> bool:
        step = self.step_count if step is None else step
        return self.cfg.agent_every > 0 and step >= self.cfg.agent_start

    def _d_steps(self, last_phase: bool = False) -> None:
        """n_critic D updates on real digits vs G's fakes (a refined_frac of them agent-refined). `last_phase`: no
        G step follows in this iteration, so the last D update's all-reduce carries the BatchNorm statistics."""
        cfg, dev, bs = self.cfg, self.device, self.cfg.batch_size
        n_ref = int(round(cfg.refined_frac * bs)) if self._agent_active() else 0
        for i in range(cfg.n_critic):
            real = self.sampler.next(bs)
            z = self._randn(bs)
            if n_ref:  # D also sees what the agent makes, so it can't stay fooled (once any episode has ended)
                z_ref, have = self.env.sample_final(n_ref, self.gen)
                z = torch.cat([torch.where(have, z_ref, z[:n_ref]), z[n_ref:]])
            # With G frozen, D is fitted to what is actually sampled: G_ema in eval mode.
            gen_model = self.G_ema if cfg.g_every == 0 else self.G
            with torch.no_grad(), autocast(dev, cfg.amp):
                fake = gen_model(z).float()
            with autocast(dev, cfg.amp):
                d_real, d_fake = self.D(real).float(), self.D(fake).float()
            target = None
            if cfg.real_label < 1.0:  # one-sided label smoothing
                target = cfg.real_label + (1 - cfg.real_label) * torch.rand(bs, generator=self.gen, device=dev)
            loss_d = losses.d_loss(cfg.loss, d_real, d_fake, target)
            if cfg.loss == "wgan-gp":
                loss_d = loss_d + cfg.gp_weight * losses.gradient_penalty(self.D, real, fake, self.gen)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if self.dist is not None:  # with the BatchNorm statistics (G's and D's) after the iteration's last forward
                last = last_phase and i == cfg.n_critic - 1
                self.dist.sync_grads(list(self.D.parameters()), also=self._bn if last else [])
            self.opt_d.step()
        d_fake = d_fake.detach()
        self._add("d_loss", loss_d.detach())
        self._add("d_real", d_real.detach().mean())
        if n_ref:
            self._add("d_refined", d_fake[:n_ref].mean())
            self._add("d_fake", d_fake[n_ref:].mean())
        else:
            self._add("d_fake", d_fake.mean())

    def _g_step(self) -> None:
        """One G update against the current D."""
        cfg = self.cfg
        z = self._randn(cfg.batch_size)
        with autocast(self.device, cfg.amp):
            loss_g = losses.g_loss(cfg.loss, self.D(self.G(z)).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        if self.dist is not None:  # G's step ends its iteration's GAN work: the BatchNorm statistics ride along
            self.dist.sync_grads(list(self.G.parameters()), also=self._bn)
        self.opt_g.step()
        self._add("g_loss", loss_g.detach())

    def _agent_step(self, eps: float | torch.Tensor) -> None:
        stats = dqn_step(self.agent, self.env, self.replay, self.cfg, eps, self.gen)
        self.agent_steps += 1
        ended_sum, n_ended = stats["episode_return"]
        self._add("episode_return", ended_sum, count=n_ended)
        if "td_loss" in stats:
            self._add("td_loss", stats["td_loss"])

    def epsilon(self) -> float:
        c = self.cfg
        return linear_epsilon(self.agent_steps, c.eps_start, c.eps_end, c.eps_decay)

    def _randn(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.gen, device=self.device)

    # ------------------------------------------------------------------------------------------------ statistics
    def _add(self, key: str, value: torch.Tensor, count: torch.Tensor | None = None) -> None:
        """Sum a step statistic on the device (`count`: how many items `value` sums, itself a device tensor, e.g.
        the episodes that ended); read back at the next check. The sums are updated in place (a graph replay adds
        into the same memory)."""
        items = {key: value} if count is None else {key: value, key + "#n": count.float()}
        for k, v in items.items():
            if k not in self._acc:
                self._acc[k] = torch.zeros((), device=self.device)
                self._lastv[k] = torch.zeros((), device=self.device)
            self._acc[k].add_(v)
            self._lastv[k].copy_(v)
            self._last_keys.add(k)
        if count is None:
            self._counts[key] = self._counts.get(key, 0) + 1

    def _read(self, with_probe: bool, reset: bool = True
              ) -> tuple[dict[str, float], dict[str, float], list[float] | None, bool]:
        """One host read-back: (means since the last read, this step's values, Q probe, everything finite)."""
        keys, last_keys = sorted(self._acc), sorted(self._last_keys)
        parts = [self._acc[k].view(1) for k in keys] + [self._lastv[k].view(1) for k in last_keys]
        params = [p for m in self.modules().values() for p in m.parameters()]
        parts.append(torch.stack(torch._foreach_norm(params, float("inf"))).max().view(1))  # inf/NaN if any is
        probe = self._probe_q() if with_probe else None
        if probe is not None:
            parts.append(probe.float())
        vals = to_host(torch.cat(parts))
        sums = dict(zip(keys, vals))
        last = dict(zip(last_keys, vals[len(keys):]))
        pos = len(keys) + len(last_keys)
        weights_ok = math.isfinite(vals[pos])
        q = vals[pos + 1:] if probe is not None else None
        healthy = weights_ok and all(math.isfinite(v) for v in (*sums.values(), *last.values()))
        if self.dist is not None:  # every rank rewinds together, or none does
            healthy = self.dist.all_true(healthy, self.device)
        means, step_vals = {}, {}
        for k in keys:
            n = sums.get(k + "#n", self._counts.get(k, 0))
            if not k.endswith("#n") and n > 0:
                means[k] = sums[k] / n
        for k in last_keys:
            n = last.get(k + "#n", 1.0)
            if not k.endswith("#n") and n > 0:
                step_vals[k] = last[k] / n
        if reset:
            self._zero_sums()
        return means, step_vals, q, healthy

    def _zero_sums(self) -> None:
        if self._acc:
            torch._foreach_zero_(list(self._acc.values()))
        self._counts = {}

    def _after(self, start: int, end: int) -> bool:
        """Host work for the interval boundaries that steps (start, end] crossed: the read-back and history point,
        sample grids, FID and direction recomputes. False if the read-back found a non-finite value (rewound)."""
        cfg = self.cfg

        def crossed(every: int) -> bool:
            return every > 0 and end // every > start // every

        if crossed(cfg.dirs_every) and cfg.directions in ("sefa", "pca"):
            dirs = compute_directions(cfg.directions, self.G_ema, cfg.n_dirs, self.gen)
            if self.dist is not None:  # PCA samples from each rank's own stream: rank 0's directions for all
                self.dist.broadcast([dirs])
            self.env.set_directions(dirs)
        ok = True
        if crossed(cfg.log_every):
            means, last, q, ok = self._read(with_probe=self.agent_steps > 0)
            self.last_stats = last
            if not ok:
                self._rewind(means, last)
                return False
            if self._agent_active():  # no agent acting, no exploration rate to plot (a flat line to redraw)
                means["epsilon"] = self.epsilon()
            if q is not None:
                means["q_probe"] = q
            self.history.add(end, **means)
            self.record_version += 1
            if end - self._good["step"] >= GOOD_EVERY:
                self._capture()
        if crossed(cfg.grid_every) or start == 0:
            self._record_grid()
        if crossed(cfg.fid_every):
            self.history.add(end, fid=self.fid())
            self.record_version += 1
        return ok

    def check(self) -> bool:
        """Read back now (between log intervals, e.g. after a Step click): updates `last_stats` and rewinds on a
        non-finite value, like the periodic check. The sums carry on to the next history point."""
        means, last, _, ok = self._read(with_probe=False, reset=False)
        self.last_stats = last
        if not ok:
            self._rewind(means, last)
            return False
        return True

    def _record_grid(self) -> None:
        raw = self.generate(self.fixed_z).numpy()
        refined = self.generate(self.fixed_z, refine=True).numpy() if self.agent_steps else raw
        self.grids.append((self.step_count, raw, refined))
        if len(self.grids) > MAX_GRIDS:  # thin, but always keep the newest grid
            self.grids = self.grids[::2] + ([self.grids[-1]] if len(self.grids) % 2 == 0 else [])
        self.record_version += 1

    # ------------------------------------------------------------------------------------------------ safety net
    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a rewind restores: parameters, buffers and optimizer state (Adam's moments and steps)."""
        out = [t for m in self.modules().values() for t in (*m.parameters(), *m.buffers())]
        for opt in self.optimizers().values():
            for st in opt.state.values():
                out += [v for v in st.values() if isinstance(v, torch.Tensor)]
        return out

    @torch.no_grad()
    def _capture(self) -> None:
        """Copy the current state into preallocated buffers (reallocated only when the optimizer state grew)."""
        live = self._state_tensors()
        good = self._good
        if good is None or len(good["tensors"]) != len(live) or any(a is not b for a, b in zip(good["live"], live)):
            good = self._good = {"live": live, "tensors": [t.detach().clone() for t in live]}
            good["has_state"] = {k: set(o.state) for k, o in self.optimizers().items()}
        else:
            torch._foreach_copy_(good["tensors"], live)
        good.update(step=self.step_count, agent_steps=self.agent_steps, gen=self.gen.get_state(),
                    directions=self.env.directions.clone())

    @torch.no_grad()
    def _rewind(self, means: dict[str, float], last: dict[str, float]) -> None:
        bad = sorted(k for k, v in {**means, **last}.items() if not math.isfinite(v)) or ["weights"]
        at, good = self.step_count, self._good
        torch._foreach_copy_(good["live"], good["tensors"])
        for k, opt in self.optimizers().items():  # optimizer state made after the copy: back to none
            for p in [p for p in opt.state if p not in good["has_state"][k]]:
                del opt.state[p]
        self.step_count, self.agent_steps = good["step"], good["agent_steps"]
        self.gen.set_state(good["gen"])
        self.env.set_directions(good["directions"])
        self.history.truncate(self.step_count)
        self.record_version += 1
        self.env.reset()
        self._zero_sums()
        self._last_keys = set()
        if self._graphs is not None:  # state made after the copy is gone, and the generator was reset: recapture
            self._graphs.invalidate()
        self.message = (f"non-finite {', '.join(bad)} at step {at}: paused and restored the last good weights "
                        f"(step {self.step_count})")

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "D_bar": self.D_bar, "Q": self.agent.q,
                "Q_target": self.agent.q_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d, "opt_q": self.agent.opt}

    # ------------------------------------------------------------------------------------------------ control
    def run(self, steps: int | None = None, seconds: float | None = None,
            on_step: Callable[[Trainer], None] | None = None) -> bool:
        """Train synchronously until `steps` more steps or `seconds` pass. Returns False if training diverged."""
        t_end = None if seconds is None else time.monotonic() + seconds
        done = 0
        while (steps is None or done < steps) and (t_end is None or time.monotonic() < t_end):
            ok, n = self.advance(None if steps is None else steps - done)
            if not ok:
                return False
            done += n
            if on_step is not None:
                on_step(self)
        return self.check() if done and self.step_count % self.cfg.log_every else True

    def set(self, **knobs: Any) -> None:
        """Change live knobs (see config.LIVE_KEYS) between steps; anything else raises ConfigError."""
        frozen = sorted(set(knobs) - LIVE_KEYS)
        if frozen:
            raise ConfigError(f"{', '.join(frozen)} cannot change during a run (reset to change it)")
        self.cfg = c = self.cfg.replace(**knobs)
        for opt, lr in ((self.opt_g, c.lr_g), (self.opt_d, c.lr_d), (self.agent.opt, c.q_lr)):
            set_lr(opt, lr)
        if c.beta_goal > 0 and self.reward_classifier is None:
            self.reward_classifier = self.potential.classifier = self._maybe_reward_classifier()
        self.potential.set_weights(c.lam_prior, c.beta_goal)
        self.env.goals = c.beta_goal > 0

    def _maybe_reward_classifier(self) -> torch.nn.Module | None:
        if self.cfg.beta_goal <= 0:
            return None
        from .metrics import load_classifier
        return load_classifier("reward", self.device)

    # ------------------------------------------------------------------------------------------------ reading
    @torch.no_grad()
    def rollout(self, z: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None) -> Trajectory:
        """The agent's greedy rollout from z (argmax Q, stopping for good at its first stop)."""
        z = z.to(self.device)
        goal = no_goal(z.shape[0], self.device) if goal is None else goal.to(self.device)
        return rollout(lambda zz, t, g: self._q(zz, t, g).argmax(1), z, goal, self.env.table, self.cfg.horizon,
                       steps)

    def refine(self, z: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """z_T of the greedy rollout and the actions taken at each step (0 once stopped)."""
        traj = self.rollout(z, goal, steps)
        return traj.z, traj.actions

    @torch.no_grad()
    def generate(self, z: torch.Tensor, refine: bool = False, goal: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images (N, 28, 28) from G_ema, optionally after the agent's greedy refinement."""
        if refine:
            z, _ = self.refine(z, goal)
        out = []
        for chunk in z.to(self.device).split(500):
            with autocast(self.device, self.cfg.amp):
                out.append(self.G_ema(chunk).float())
        return to_uint8(torch.cat(out).cpu())

    @torch.no_grad()
    def _probe_q(self) -> torch.Tensor:
        """Mean Q per action over the fixed probe states (fixed noise, t = 0, no goal), on the device."""
        goal = no_goal(N_FIXED, self.device)
        return self._q(self.fixed_z, torch.zeros_like(goal), goal).mean(0)

    def probe_q(self) -> list[float]:
        return self._probe_q().tolist()

    def _q(self, z: torch.Tensor, t: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Q(s, .) at states (z, t, goal), observed the way the agent observes them during training."""
        feats = self.potential.evaluate(z, goal)[1] if self.potential.features else None
        with torch.no_grad():
            return self.agent.q(observe(z, t, goal, self.cfg.horizon, feats))

    def _goals(self, goal: int | None, n: int) -> torch.Tensor:
        return torch.full((n,), -1 if goal is None else int(goal), dtype=torch.long, device=self.device)

    def q_values(self, z: torch.Tensor, t: int = 0, goal: int | None = None) -> torch.Tensor:
        """Q-values (N, 2K+1) of every action at latents z, step t, optional goal digit."""
        z = z.to(self.device)
        g = self._goals(goal, z.shape[0])
        return self._q(z, torch.full_like(g, int(t)), g).float().cpu()

    def score(self, z: torch.Tensor, goal: int | None = None) -> torch.Tensor:
        """The potential Phi(z) the agent is rewarded by (batched)."""
        out = [self.potential(c.to(self.device), self._goals(goal, c.shape[0])).float().cpu() for c in z.split(512)]
        return torch.cat(out)

    def directions(self) -> torch.Tensor:
        """The agent's K unit directions in z (a copy)."""
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

    # ------------------------------------------------------------------------------------------------ saveable state
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
        """(weights, training-state tensors, JSON meta): everything an exact resume needs."""
        weights = {f"{name}.{k}": v for name, m in self.modules().items() for k, v in m.state_dict().items()}
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"step": self.step_count, "agent_steps": self.agent_steps, "elapsed": self.elapsed,
                                "engine": ENGINE, "optimizers": {}}
        for name, opt in self.optimizers().items():
            sd = opt.state_dict()
            # plain values: a graphed run keeps lr as a device tensor and capturable on (see graphs.py)
            groups = [{**g, "lr": float(g["lr"]), "capturable": False} for g in sd["param_groups"]]
            meta["optimizers"][name] = {"param_groups": groups}
            for idx, st in sd["state"].items():
                for k, v in st.items():
                    tensors[f"{name}.{idx}.{k}"] = v
        tensors.update(self.replay.state_dict())
        env = self.env
        tensors.update({"env.z": env.z, "env.t": env.t, "env.goal": env.goal, "env.phi": env.phi, "env.ret": env.ret,
                        "env.final_z": env.final_z[:env.final_pool], "env.directions": env.directions,
                        "fixed_z": self.fixed_z, "rng.gen": self.gen.get_state()})
        if env.feats is not None:
            tensors["env.feats"] = env.feats
        meta["env_final_count"] = int(env.final_count)
        meta["history"] = self.history.to_dict()
        return weights, tensors, meta

    def rank_state(self) -> dict[str, torch.Tensor]:
        """What differs between the ranks of a distributed run: their episodes, replay and random stream."""
        env = self.env
        out = {"env.z": env.z, "env.t": env.t, "env.goal": env.goal, "env.phi": env.phi, "env.ret": env.ret,
               "env.final_z": env.final_z[:env.final_pool], "env.final_count": env.final_count.view(1),
               "rng.gen": self.gen.get_state(), "rank.step": torch.tensor([self.step_count])}
        if env.feats is not None:
            out["env.feats"] = env.feats
        out.update(self.replay.state_dict())
        return out

    def load_rank_state(self, t: dict[str, torch.Tensor]) -> None:
        env, dev = self.env, self.device
        for k, cur in (("z", env.z), ("t", env.t), ("goal", env.goal), ("phi", env.phi), ("ret", env.ret),
                       ("final_z", env.final_z[:env.final_pool])):
            cur.copy_(t[f"env.{k}"].to(dev))
        env.final_count.copy_(t["env.final_count"].to(dev).view(()))
        if env.feats is not None and "env.feats" in t:
            env.feats.copy_(t["env.feats"].to(dev))
        self.replay.load_state_dict({k: v for k, v in t.items() if k.startswith("replay.")})
        self.gen.set_state(t["rng.gen"])

    def reseed_rank(self) -> None:
        """A fresh stream and fresh episodes for this rank (its own saved state is missing or from another size)."""
        self.gen.manual_seed(self.rank_seed + self.step_count)
        self.env.reset()

    def load_weights(self, weights: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> None:
        """Load the modules' tensors (keys prefixed "G." ...); shapes were checked by the caller."""
        for name, module in self.modules().items():
            if name in skip:
                continue
            prefix = name + "."
            module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], new_agent: bool = False
                        ) -> None:
        """Restore the training state written by `state_dict` (after `load_weights`). `new_agent` keeps the GAN and
        starts a fresh agent: Q optimizer, replay, episodes and epsilon schedule."""
        dev = self.device
        if new_agent:
            tensors = {k: v for k, v in tensors.items() if not k.startswith(("replay.", "opt_q."))}
        for name, opt in self.optimizers().items():
            if new_agent and name in AGENT_PARTS:
                continue
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, v in tensors.items():
                if key.startswith(name + "."):
                    _, idx, k = key.split(".", 2)
                    state.setdefault(int(idx), {})[k] = v.to(dev) if k != "step" else v
            opt.load_state_dict({"state": state, "param_groups": meta["optimizers"][name]["param_groups"]})
        if "replay.meta" in tensors:  # slim checkpoints carry no replay memory
            self.replay.load_state_dict({k: v for k, v in tensors.items() if k.startswith("replay.")})
        env = self.env
        # A new agent, or a different number of parallel episodes (n_envs overridden): keep only the directions and
        # start fresh episodes.
        fresh = new_agent or tensors["env.z"].shape[0] != env.n
        restore = {"directions": env.directions}
        if not fresh:
            restore.update(z=env.z, t=env.t, goal=env.goal, phi=env.phi, ret=env.ret,
                           final_z=env.final_z[:env.final_pool])
        for k, cur in restore.items():
            new = tensors[f"env.{k}"].to(dev)
            if new.shape != cur.shape:
                raise ValueError(f"env.{k} has shape {list(new.shape)}, expected {list(cur.shape)}")
            if k != "directions":
                cur.copy_(new)
        env.set_directions(tensors["env.directions"].to(dev))
        env.final_count.fill_(0 if fresh else int(meta["env_final_count"]))
        self.fixed_z = tensors["fixed_z"].to(dev)
        try:
            self.gen.set_state(tensors["rng.gen"])
        except (RuntimeError, ValueError):  # a CPU run's generator resumed on a GPU (or back): a new stream
            self.gen.manual_seed(self.cfg.seed + int(meta["step"]))
            self.notes.append("this checkpoint's random generator was saved on another device type: resuming "
                              "continues with a fresh random stream, so it is not bit-identical")
        if int(meta.get("engine", 1)) != ENGINE:
            self.notes.append(f"checkpoint written by engine v{meta.get('engine', 1)}; this is engine v{ENGINE}, "
                              f"which draws its random numbers differently: training resumes, but not bit-identically "
                              f"to an uninterrupted run")
        self.step_count = int(meta["step"])
        self.agent_steps = 0 if new_agent else int(meta["agent_steps"])
        self.elapsed = float(meta.get("elapsed", 0.0))
        self.history = History.from_dict(meta.get("history", {}), self.cfg.history_len)
        if fresh:
            env.reset()  # fresh episodes, scored with the restored D_bar
        elif env.feats is not None:  # older checkpoints did not store them: recompute
            env.feats = tensors["env.feats"].to(dev) if "env.feats" in tensors else \
                env.potential.evaluate(env.z, env.goal)[1]
        self._good = None
        self.set()  # the user's current learning rates (param_groups carried the saved ones)
