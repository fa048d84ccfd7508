"""Does the agent help? Every sampler from the same starting z, scored the same way, with paired intervals.

Rows: G raw, G_ema, truncation, random walk, greedy search on Phi, best-of-M by D_bar, gradient ascent on Phi in z
(DOT/DDLS-style) and the DQN agent; plus goal-steering rows when the checkpoint has beta_goal > 0. Columns: classifier
FID (MetricNet), the second judge's KID / density / coverage (RewardNet features: a network the refinement agent
neither trained on nor was selected by), digit-histogram entropy, mean D_bar logit, mean |z_T - z_0|, G+D evaluations
and wall-clock per sample, and the accuracy of a fresh two-sample discriminator D' (the exploit check,
algorithms.md section 7). Every row's difference to G_ema is paired on the same z and carries a 95 % bootstrap
interval (dqngan/bootstrap.py); the verdict's PASS / FAIL / INCONCLUSIVE come from those intervals only.

Selection hygiene: reported z-sets are seeds seed_offset .. seed_offset + seeds - 1 (default 100-102); the seeds a
snapshot or setting was chosen on are declared with `selection_seeds` and may not be among them.

Cost unit ("G+D evals"): forward passes of G plus forward passes of D_bar per sample; a backward pass through both
counts as one more of each. So a plain sample costs 1, one Phi value 2, one gradient step on Phi 4. Not counted: the
Q-network (a small MLP) and, on goal rows, the reward classifier that each Phi value with a goal also runs (RewardNet
costs about twice G+D at width 0.25, and greedy search and the agent both pay it); the ms column includes them.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .bootstrap import FAIL, PASS, Interval, agree, all_of, decide, resample_counts, statistic
from .data import ImageData, load_dataset, to_float, to_uint8
from .env import action_table, no_goal, potential
from .metrics import FIDScorer, Reference, batched, load_classifier, weighted_entropy
from .models import Discriminator, dcgan_init

CHUNK = 1024  # latents per G/D forward: bounds memory (greedy scores N x 2K candidates); fastest on a 2-core CPU
PSIS = (0.5, 0.7, 0.9)
MAX_N = 10_000  # every kernel and distance matrix is built in blocks, so 10 000 samples fit in ~1 GB on a CPU
REFERENCE = "mnist5k"  # the embedded digits the metric classifier was trained against (dqngan/assets/classifiers.json)


class EvaluateError(ValueError):
    """The checkpoint or the arguments cannot be evaluated (one-line message)."""


@dataclass
class Settings:
    n: int = 2000
    seeds: int = 3
    # the reported z-sets are seeds seed_offset, seed_offset + 1, ...: the shipped snapshots were chosen on seed 0
    seed_offset: int = 100
    selection_seeds: tuple[int, ...] = ()  # seeds a snapshot or setting was chosen on: never reported
    bootstrap: int = 1000  # replicates per seed for the paired intervals
    best_of: int = 0  # candidates per sample for best-of-M; 0 = 2K+1, the Phi evaluations of one greedy step
    grad_steps: int = 20
    grad_eps: float = 0.05  # DDLS step: z += eps/2 grad Phi + sqrt(eps) sigma xi
    grad_noise: float = 0.0  # sigma; 0 = deterministic ascent (DOT-like), 1 = DDLS Langevin on exp(Phi)
    dprime_steps: int = 400
    dprime_batch: int = 64

    def seed_list(self) -> list[int]:
        return list(range(self.seed_offset, self.seed_offset + self.seeds))


@dataclass
class Ctx:
    """The frozen networks and environment constants every sampler needs (taken from a Trainer)."""

    g_ema: nn.Module
    g_raw: nn.Module
    d_bar: nn.Module
    reward_clf: nn.Module | None
    dirs: torch.Tensor
    delta: float
    horizon: int
    lam: float
    beta: float
    device: torch.device


@dataclass
class Samples:
    images: torch.Tensor  # uint8 (N, 28, 28)
    z0: torch.Tensor
    z_t: torch.Tensor
    evals: torch.Tensor  # G+D evaluations per sample (float, N)
    seconds: float = 0.0
    actions: list[torch.Tensor] = field(default_factory=list)  # per step, for the walk-style methods
    extra: dict[str, Any] = field(default_factory=dict)


def context(trainer: Any) -> Ctx:
    import copy

    cfg = trainer.cfg
    g_raw = copy.deepcopy(trainer.G).eval().requires_grad_(False)  # eval: running BN statistics, like G_ema
    return Ctx(trainer.G_ema.eval(), g_raw, trainer.D_bar.eval(), trainer.reward_classifier,
               trainer.env.directions.detach(), cfg.delta, cfg.horizon, cfg.lam_prior, cfg.beta_goal, trainer.device)


# ---------------------------------------------------------------------------------------------------- Phi
def phi(ctx: Ctx, z: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Phi, D_bar logit, float images) for one batch: `env.potential`, the one definition of Phi, on ctx's frozen
    networks (full precision); differentiable in z when z requires grad."""
    p, logit, x, _ = potential(ctx.g_ema, ctx.d_bar, z, goal, ctx.lam, ctx.beta,
                               ctx.reward_clf if ctx.beta > 0 else None)
    return p, logit, x


@torch.no_grad()
def phi_chunked(ctx: Ctx, z: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Phi, D_bar logit) of any number of latents; images are dropped to keep memory flat."""
    parts = [phi(ctx, zc, gc)[:2] for zc, gc in zip(z.split(CHUNK), goal.split(CHUNK))]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def render(g: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return to_uint8(torch.cat([g(c) for c in z.split(CHUNK)]).cpu())


def _no_goal(z: torch.Tensor) -> torch.Tensor:
    return no_goal(z.shape[0], z.device)


# ---------------------------------------------------------------------------------------------------- samplers
def sample_g(ctx: Ctx, z0: torch.Tensor, raw: bool = False, psi: float = 1.0) -> Samples:
    """Plain sampling from G_ema (or the raw G); truncation uses psi * z0, i.e. z ~ N(0, psi^2 I)."""
    z = z0 * psi
    images = render(ctx.g_raw if raw else ctx.g_ema, z)
    return Samples(images, z0, z, torch.ones(len(z0)))


@torch.no_grad()
def random_walk(ctx: Ctx, z0: torch.Tensor, gen: torch.Generator, steps: int | None = None) -> Samples:
    """T uniformly random moves (never stop) with the agent's delta and directions: exactly delta per step."""
    steps = ctx.horizon if steps is None else steps
    k, table = ctx.dirs.shape[0], action_table(ctx.dirs, ctx.delta)
    z, actions = z0.clone(), []
    for _ in range(steps):
        a = torch.randint(1, 2 * k + 1, (len(z0),), generator=gen).to(z.device)
        z = z + table[a]
        actions.append(a)
    return Samples(render(ctx.g_ema, z), z0, z, torch.ones(len(z0)), actions=actions)


@torch.no_grad()
def greedy_search(ctx: Ctx, z0: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None
                  ) -> Samples:
    """Exact one-step lookahead on Phi over the agent's action set; stops when no move improves Phi (no learning).

    Phi of the current z is cached, so a step scores the 2K moves: 1 + 2K Phi values per step searched (the last
    one finds no improvement unless T is reached), 2 G+D evals each, plus one G forward for the final image."""
    steps = ctx.horizon if steps is None else steps
    goal = _no_goal(z0) if goal is None else goal
    n, k = len(z0), ctx.dirs.shape[0]
    moves = action_table(ctx.dirs, ctx.delta)[1:]  # (2K, z_dim): every move but stop
    cur, _ = phi_chunked(ctx, z0, goal)
    z = z0.clone()
    n_phi = torch.ones(n)
    active = torch.ones(n, dtype=torch.bool, device=z0.device)
    actions = []
    for _ in range(steps):
        idx = active.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        cand = (z[idx].unsqueeze(1) + moves.unsqueeze(0)).reshape(-1, z.shape[1])  # (m * 2K, z_dim)
        p, _ = phi_chunked(ctx, cand, goal[idx].repeat_interleave(2 * k))
        best_p, best_j = p.view(-1, 2 * k).max(1)
        n_phi[idx.cpu()] += 2 * k
        better = best_p > cur[idx]
        a = torch.zeros(n, dtype=torch.long, device=z0.device)
        up = idx[better]
        a[up] = best_j[better] + 1
        z[up] = z[up] + moves[best_j[better]]
        cur[up] = best_p[better]
        active[idx[~better]] = False
        actions.append(a)
    return Samples(render(ctx.g_ema, z), z0, z, 2 * n_phi + 1, actions=actions)


@torch.no_grad()
def best_of(ctx: Ctx, z0: torch.Tensor, m: int, gen: torch.Generator) -> Samples:
    """Best of m latents by D_bar logit (DRS-lite); candidate 0 is z0 itself, the rest fresh N(0, I) draws.
    2m G+D evals to rank, plus one G forward for the winner's image."""
    goal = _no_goal(z0)
    _, best = phi_chunked(ctx, z0, goal)
    z = z0.clone()
    for _ in range(m - 1):
        c = torch.randn(z0.shape, generator=gen).to(z0.device)
        _, logit = phi_chunked(ctx, c, goal)
        win = logit > best
        z[win], best[win] = c[win], logit[win]
    return Samples(render(ctx.g_ema, z), z0, z, torch.full((len(z0),), 2.0 * m + 1), extra={"m": m})


@torch.enable_grad()
def gradient_refine(ctx: Ctx, z0: torch.Tensor, steps: int, eps: float, noise: float, gen: torch.Generator,
                    goal: torch.Tensor | None = None) -> Samples:
    """DDLS-style update on Phi (which already holds the prior term): z += eps/2 grad Phi + sqrt(eps) noise xi."""
    goal = _no_goal(z0) if goal is None else goal
    out = []
    for zc, gc in zip(z0.split(CHUNK), goal.split(CHUNK)):
        z = zc.clone()
        for _ in range(steps):
            z.requires_grad_(True)
            p, _, _ = phi(ctx, z, gc)
            (grad,) = torch.autograd.grad(p.sum(), z)
            z = z.detach() + 0.5 * eps * grad
            if noise > 0:
                z = z + math.sqrt(eps) * noise * torch.randn(z.shape, generator=gen).to(z.device)
        out.append(z.detach())
    z = torch.cat(out)
    return Samples(render(ctx.g_ema, z), z0, z, torch.full((len(z0),), 4.0 * steps + 1))


def decision_cost(view: str | bool) -> float:
    """G+D evals per agent decision for Potential.features: "" (z only) 0; "grad" (the slope of Phi along each
    direction) a G and a D_bar forward plus a backward = 4; any other view ("image": D_bar's features of G(z),
    "score": Phi and the logit) reads G(z) through D_bar once = 2. Older engines stored a bool (True = image)."""
    if not view:
        return 0.0
    return 4.0 if view == "grad" else 2.0


@torch.no_grad()
def dqn_agent(trainer: Any, ctx: Ctx, z0: torch.Tensor, goal: torch.Tensor | None = None) -> Samples:
    """The trained agent's greedy rollout (`Trainer.refine`), then one G_ema forward for the image.

    The Q-network's view of G(z) costs G+D evals at each of the min(moves + 1, T) decisions per sample (the last
    one picks stop): see decision_cost."""
    z, actions = trainer.refine(z0, goal)
    moves = torch.stack(actions).ne(0).sum(0).float().cpu() if actions else torch.zeros(len(z0))
    decisions = torch.clamp(moves + 1, max=trainer.cfg.horizon)
    per_decision = decision_cost(trainer.potential.features)
    return Samples(render(ctx.g_ema, z), z0, z, 1.0 + per_decision * decisions, actions=actions,
                   extra={"moves": float(moves.mean())})


def timed(fn: Callable[..., Samples], *args: Any, **kwargs: Any) -> Samples:
    """Call a sampler and record its wall-clock time in the result."""
    t0 = time.perf_counter()
    s = fn(*args, **kwargs)
    s.seconds = time.perf_counter() - t0
    return s


# ---------------------------------------------------------------------------------------------------- exploit check
@torch.enable_grad()  # callers may hold no_grad (Scorer.row does)
def two_sample_test(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = 400, batch: int = 64,
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh small D' trained on half of real vs half of fake (uint8 images); returns its 0/1 correctness on each
    held-out real and each held-out fake (float64, n - n//2 each), so the accuracy can be resampled.

    Same architecture (a quarter-width DCGAN discriminator without batch norm: with it, the train/eval switch made the
    accuracy jump between 0.52 and 0.9 across seeds), init, data order and budget for every method at a given seed, so
    only the fake images differ; the held-out fakes are the same sample indices for every method (paired)."""
    gen = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    r = to_float(real[torch.randperm(len(real), generator=gen)[:n]])
    f = to_float(fake[torch.randperm(len(fake), generator=gen)[:n]])
    h = max(1, n // 2)
    with torch.random.fork_rng(devices=[]):  # D' init must not disturb (or depend on) the global RNG
        torch.manual_seed(seed)
        net = Discriminator(width=0.25, norm="none").to(device)
        dcgan_init(net)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.5, 0.999))
    half = max(1, batch // 2)
    target = torch.cat([torch.ones(half), torch.zeros(half)]).to(device)
    for _ in range(steps):
        ir = torch.randint(0, h, (half,), generator=gen)
        jf = torch.randint(0, h, (half,), generator=gen)
        loss = F.binary_cross_entropy_with_logits(net(torch.cat([r[ir], f[jf]]).to(device)), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        test_r, test_f = r[h:] if n > 1 else r, f[h:] if n > 1 else f
        right_r = torch.cat([net(c.to(device)).view(-1) > 0 for c in test_r.split(CHUNK)]).double().cpu()
        right_f = torch.cat([net(c.to(device)).view(-1) <= 0 for c in test_f.split(CHUNK)]).double().cpu()
    return right_r, right_f


def two_sample_accuracy(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = 400, batch: int = 64,
                        device: torch.device | str = "cpu") -> float:
    """Held-out accuracy of `two_sample_test`'s D': 0.5 = indistinguishable from real."""
    right_r, right_f = two_sample_test(real, fake, seed, steps, batch, device)
    return float((right_r.sum() + right_f.sum()) / (len(right_r) + len(right_f)))


# ---------------------------------------------------------------------------------------------------- scoring
@dataclass
class Draws:
    """One seed's bootstrap replicates, shared by every method of that seed (paired): row 0 is the plain set (all
    ones), rows 1..B the resamples; `samples` over the N samples, `real`/`fake` over D''s held-out halves."""

    samples: torch.Tensor
    real: torch.Tensor
    fake: torch.Tensor

    @classmethod
    def make(cls, n: int, b: int, seed: int, n_real: int | None = None) -> Draws:
        """n samples; D' pairs min(n, n_real) of them with as many reals (above 5 000 samples the reals run out)."""
        pairs = n if n_real is None else min(n, n_real)
        n_test = pairs - max(1, pairs // 2) if pairs > 1 else pairs
        parts = [resample_counts(size, b, 7_919 * (seed + 1) + i) for i, size in enumerate((n, n_test, n_test))]
        return cls(*(torch.cat([torch.ones(1, p.shape[1], dtype=torch.float64), p]) for p in parts))


Point = dict[str, float]
Reps = dict[str, np.ndarray]


@dataclass
class Scorer:
    """Scores a sample set: MetricNet-FID against the reference digits, and the second, independent judge (RewardNet
    features: KID, FID, density, coverage), each under every bootstrap replicate; plus D̄, D' and the digit mix."""

    fid: FIDScorer  # MetricNet and the fixed reference subset
    metric_ref: Reference  # MetricNet features of the reference digits
    judge: nn.Module  # RewardNet
    judge_ref: Reference  # RewardNet features of the same reference digits
    d_bar: nn.Module
    real_for_dprime: torch.Tensor
    settings: Settings
    device: torch.device

    @torch.no_grad()
    def row(self, s: Samples, seed: int, draws: Draws, goals: torch.Tensor | None = None) -> tuple[Point, Reps]:
        """(the row's values, {metric: (B,) replicate values}) for one seed."""
        c = draws.samples
        logits = self.fid.logits(s.images)
        sets = {"fid": self.metric_ref.scores(self.fid.features(s.images), c, fid_only=True)["fid"]}
        judged = self.judge_ref.scores(batched(self.judge, "features", s.images, self.device), c)
        sets.update(kid=judged["kid"], fid_r=judged["fid"], density=judged["density"], coverage=judged["coverage"],
                    entropy=weighted_entropy(logits.argmax(1), c))
        right_r, right_f = two_sample_test(self.real_for_dprime, s.images, seed, self.settings.dprime_steps,
                                           self.settings.dprime_batch, self.device)
        sets["dprime_acc"] = (draws.real @ right_r + draws.fake @ right_f) / (len(right_r) + len(right_f))
        if goals is not None:
            sets["success"] = self._success(logits, goals, c)
        dbar = torch.cat([self.d_bar(to_float(x).to(self.device)).float().cpu() for x in s.images.split(CHUNK)])
        point = {k: float(v[0]) for k, v in sets.items()}
        point.update(dbar_logit=float(dbar.mean()), displacement=float((s.z_t - s.z0).norm(dim=1).mean()),
                     evals=float(s.evals.mean()), ms=1000.0 * s.seconds / len(s.images))
        return point, {k: v[1:].numpy() for k, v in sets.items()}

    def success(self, s: Samples, goals: torch.Tensor, draws: Draws) -> tuple[float, np.ndarray]:
        """Fraction of samples the metric classifier (not the reward one) reads as their goal digit, and its
        replicates."""
        v = self._success(self.fid.logits(s.images), goals, draws.samples)
        return float(v[0]), v[1:].numpy()

    @staticmethod
    def _success(logits: torch.Tensor, goals: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        hit = (logits.argmax(1) == goals.cpu()).to(torch.float64)
        return counts @ hit / counts.sum(1)


def reference(n: int, device: torch.device) -> tuple[ImageData, FIDScorer]:
    """The reference digits (min(n, all) of them, a fixed seeded subset) and MetricNet's FIDScorer on them."""
    data = load_dataset(REFERENCE)
    return data, FIDScorer(data.images, n=min(n, len(data.images)), device=device,
                           classifier=load_classifier("metric", device))


# ---------------------------------------------------------------------------------------------------- the run
AGENT, EMA, GREEDY, FLOOR = "DQN agent (greedy)", "G_ema", "greedy search (D̄)", "real digits (floor)"
ROWS = [FLOOR, "G raw", EMA, *[f"truncation ψ={p}" for p in PSIS], "random walk", GREEDY, "best-of-M (D̄)",
        "gradient ascent in z", AGENT]
GOAL_ROWS = ["goal: none (G_ema)", "goal: random walk", "goal: greedy search", "goal: DQN agent"]
GOAL_AGENT, GOAL_EMA = GOAL_ROWS[3], GOAL_ROWS[0]


def check_settings(settings: Settings) -> None:
    """One-line EvaluateErrors for settings the protocol cannot honour."""
    if not 2 <= settings.n <= MAX_N:
        raise EvaluateError(f"--n must be between 2 (FID needs a covariance) and {MAX_N}, got {settings.n}")
    if settings.bootstrap < 10:
        raise EvaluateError(f"--bootstrap must be >= 10 replicates for a 95 % interval, got {settings.bootstrap}")
    overlap = sorted(set(settings.seed_list()) & set(settings.selection_seeds))
    if overlap:
        raise EvaluateError(f"reported seeds {settings.seed_list()} overlap the selection seeds {overlap}: a snapshot "
                            f"chosen on a z-set must be reported on other ones (raise --seed-offset)")


def evaluate(trainer: Any, settings: Settings, progress: bool = True) -> dict[str, Any]:
    """Run every method on every seed; returns {"meta", "rows", "goal_rows", "reps"} with per-seed values and, in
    "reps", each row's per-seed bootstrap replicates (paired across rows within a seed)."""
    from tqdm import tqdm

    cfg = trainer.cfg
    if cfg.dataset not in ("mnist5k", "mnist"):
        raise EvaluateError(f"classifier-FID is defined for MNIST only; this checkpoint trained on {cfg.dataset!r}")
    check_settings(settings)
    dev = trainer.device
    ctx = context(trainer)
    data, fid = reference(settings.n, dev)
    real_ref = data.images[fid.real_idx]
    judge = load_classifier("reward", dev)
    scorer = Scorer(fid, Reference(fid.features(real_ref)), judge, Reference(batched(judge, "features", real_ref, dev)),
                    ctx.d_bar, real_ref, settings, dev)
    rest = torch.ones(len(data.images), dtype=torch.bool)
    rest[fid.real_idx] = False
    rest_idx = rest.nonzero().squeeze(1)  # digits outside the reference: the floor row draws from these
    goal_on = cfg.beta_goal > 0 and ctx.reward_clf is not None
    n_methods = len(ROWS) - (0 if len(rest_idx) >= settings.n else 1) + (len(GOAL_ROWS) if goal_on else 0)
    bar = tqdm(total=settings.seeds * n_methods, desc="evaluate", unit="row", disable=not progress, leave=False)
    rows: dict[str, list[Point]] = {}
    goal_rows: dict[str, list[Point]] = {}
    reps: dict[str, list[Reps]] = {}
    m = settings.best_of or 2 * cfg.n_dirs + 1  # default: the Phi values of one greedy step

    def tick(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    for seed in settings.seed_list():
        draws = Draws.make(settings.n, settings.bootstrap, seed, n_real=len(real_ref))
        r, g, rp = _one_seed(trainer, ctx, scorer, data.images, rest_idx, settings, m, seed, draws, goal_on, tick)
        for table, part in ((rows, r), (goal_rows, g), (reps, rp)):
            for name, values in part.items():
                table.setdefault(name, []).append(values)
    bar.close()
    meta = {
        "n": settings.n, "seeds": settings.seeds, "seed_list": settings.seed_list(),
        "selection_seeds": list(settings.selection_seeds), "bootstrap": settings.bootstrap,
        "settings": {**settings.__dict__, "selection_seeds": list(settings.selection_seeds)}, "best_of_m": m,
        "reference": f"{len(real_ref)} fixed {REFERENCE} digits (FIDScorer subset, seed 0), the same for every seed",
        "metrics": "fid: Fréchet distance on MetricNet features; fid_r: the same on RewardNet features; kid (MMD², "
                   "the report shows ×10³), density, coverage (k = 5): on RewardNet features standardised by the "
                   "reference digits' mean and std per unit",
        "judge_independent": not goal_on,
        "floor": "N other mnist5k digits (disjoint from the reference)" if FLOOR in rows else None,
        "config": {k: getattr(cfg, k, None) for k in ("z_dim", "n_dirs", "delta", "horizon", "lam_prior",
                                                      "beta_goal", "directions", "width", "q_state")},
        "checkpoint_step": trainer.step_count, "agent_steps": trainer.agent_steps,
        "hardware": hardware(dev),
    }
    return {"meta": meta, "rows": rows, "goal_rows": goal_rows, "reps": reps}


def _one_seed(trainer: Any, ctx: Ctx, scorer: Scorer, real: torch.Tensor, rest_idx: torch.Tensor,
              settings: Settings, m: int, seed: int, draws: Draws, goal_on: bool, tick: Callable[[str], None]
              ) -> tuple[dict[str, Point], dict[str, Point], dict[str, Reps]]:
    """Every row for one seed, all from the same z_0; returns (rows, goal rows, replicates of both)."""
    n, dev = settings.n, ctx.device
    z0 = torch.randn(n, trainer.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(dev)
    rng = [torch.Generator().manual_seed(10_000 * (seed + 1) + i) for i in range(4)]
    rows: dict[str, Point] = {}
    goal_rows: dict[str, Point] = {}
    reps: dict[str, Reps] = {}

    def add(name: str, s: Samples, goals: torch.Tensor | None = None, same_as: str | None = None) -> None:
        if same_as is not None:  # the very same images: only the success rate is new
            hit, hit_reps = scorer.success(s, goals, draws)
            goal_rows[name], reps[name] = {**rows[same_as], "success": hit}, {**reps[same_as], "success": hit_reps}
        else:
            (goal_rows if goals is not None else rows)[name], reps[name] = scorer.row(s, seed, draws, goals)
        tick(name)

    if len(rest_idx) >= n:
        pick = rest_idx[torch.randperm(len(rest_idx), generator=rng[0])[:n]]
        add(FLOOR, Samples(real[pick], z0, z0, torch.zeros(n)))
    add("G raw", timed(sample_g, ctx, z0, raw=True))
    add(EMA, timed(sample_g, ctx, z0))
    for psi in PSIS:
        add(f"truncation ψ={psi}", timed(sample_g, ctx, z0, psi=psi))
    walk = timed(random_walk, ctx, z0, rng[1])
    add("random walk", walk)
    add(GREEDY, timed(greedy_search, ctx, z0))
    add("best-of-M (D̄)", timed(best_of, ctx, z0, m, rng[2]))
    add("gradient ascent in z", timed(gradient_refine, ctx, z0, settings.grad_steps, settings.grad_eps,
                                      settings.grad_noise, rng[3]))
    agent = timed(dqn_agent, trainer, ctx, z0)
    add(AGENT, agent)
    rows[AGENT]["moves"] = agent.extra["moves"]
    if goal_on:
        goals = (torch.arange(n) % 10).to(dev)  # every digit equally often
        add(GOAL_EMA, timed(sample_g, ctx, z0), goals, same_as=EMA)
        add(GOAL_ROWS[1], walk, goals, same_as="random walk")
        add(GOAL_ROWS[2], timed(greedy_search, ctx, z0, goals), goals)
        agent_goal = timed(dqn_agent, trainer, ctx, z0, goals)
        add(GOAL_AGENT, agent_goal, goals)
        goal_rows[GOAL_AGENT]["moves"] = agent_goal.extra["moves"]
    return rows, goal_rows, reps


def hardware(device: torch.device) -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{device.type}{gpu}; {cpu}; {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)")


# ---------------------------------------------------------------------------------------------------- summaries
PAIRED = ("fid", "kid", "fid_r", "density", "coverage", "entropy", "dprime_acc", "success")


def summarise(values: list[Point]) -> dict[str, dict[str, float]]:
    """Per-metric mean and sample std (ddof=1; 0 with one seed) over seeds."""
    out = {}
    for key in values[0]:
        v = np.array([d[key] for d in values], dtype=np.float64)
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "values": v.tolist()}
    return out


def _per_seed(result: dict[str, Any]) -> tuple[list[dict[str, Point]], list[dict[str, Reps]]]:
    """(points, replicates) per seed: points[s][row][metric] and replicates[s][row][metric], rows and goal rows."""
    table = {**result["rows"], **result["goal_rows"]}
    seeds = len(next(iter(table.values())))
    return ([{name: v[s] for name, v in table.items()} for s in range(seeds)],
            [{name: v[s] for name, v in result["reps"].items()} for s in range(seeds)])


def paired(result: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every row's difference to G_ema on the same z (goal rows: to "goal: none (G_ema)"), per metric: the mean over
    seeds with its 95 % paired bootstrap interval, and each seed's own estimate and interval."""
    points, reps = _per_seed(result)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for names, base in ((result["rows"], EMA), (result["goal_rows"], GOAL_EMA)):
        for name in names:
            if name in (FLOOR, base):  # the floor's digits come from no z: nothing to pair
                continue
            out[name] = {key: statistic(points, reps, lambda v, k=key, a=name, b=base: v(a, k) - v(b, k)).as_dict()
                         for key in PAIRED if key in reps[0][name] and key in reps[0][base]}
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the table, plot, verdict and JSON show: every row reduced to mean/std per metric, the paired differences
    to G_ema with their intervals, and the verdict."""
    return {"meta": result["meta"],
            "rows": {k: summarise(v) for k, v in result["rows"].items()},
            "goal_rows": {k: summarise(v) for k, v in result["goal_rows"].items()},
            "paired": paired(result), "verdict": verdict(result)}


# ---------------------------------------------------------------------------------------------------- verdict
QUALITY = (("fid", "FID", 1.0, 2), ("kid", "KID×10³", 1e3, 2))  # MetricNet-FID and the independent RewardNet-KID
DPRIME_MARGIN = 0.02  # "no easier to tell from real than G_ema", up to 2 accuracy points


def verdict(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's targets, each PASS / FAIL / INCONCLUSIVE from the paired 95 % intervals pooled over seeds. A quality
    claim needs both metrics (MetricNet-FID, RewardNet-KID) to agree; a claim made of parts passes when every part
    does and fails when any part does."""
    points, reps = _per_seed(result)
    cfg = result["meta"]["config"]
    k = cfg["n_dirs"]

    def st(fn: Callable[[Callable[[str, str], Any]], Any]) -> Interval:
        return statistic(points, reps, fn)

    def mean(row: str, key: str) -> float:
        return float(np.mean([p[row][key] for p in points]))

    def quality(fn: Callable[[Callable[[str, str], Any], str], Any], at_most: float | None = None,
                at_least: float | None = None) -> tuple[str, str]:
        """One claim on both quality metrics: (agreed status, the numbers)."""
        statuses, parts = [], []
        for key, label, scale, d in QUALITY:
            iv = st(lambda v, key=key: fn(v, key))
            statuses.append(decide(iv, at_most, at_least))
            parts.append(f"{label} {_iv(iv, scale, d)} ({statuses[-1]})")
        return agree(*statuses), "; ".join(parts)

    out = []
    goal_only = cfg["beta_goal"] > 0
    if goal_only:
        why = ("N/A: a goal-only agent (β > 0: every training episode had a goal) refuses unconditional refinement "
               "(CLI, Lab, app); its no-goal row documents that misuse")
        out += [{"target": t, "status": "N/A", "detail": why} for t in TARGETS[:4]]
    else:
        a, e, g = AGENT, EMA, GREEDY
        status, detail = quality(lambda v, m: v(a, m) - 0.85 * v(e, m), at_most=0)
        out.append(_check(TARGETS[0], status, f"agent − 0.85 × G_ema: {detail}; FID {mean(a, 'fid'):.2f} vs "
                                              f"{mean(e, 'fid'):.2f} ({mean(a, 'fid') / mean(e, 'fid'):.2f}×)"))
        ent = st(lambda v: v(a, "entropy") - 0.97 * v(e, "entropy"))
        cov = st(lambda v: v(a, "coverage") - 0.97 * v(e, "coverage"))
        s_ent, s_cov = decide(ent, at_least=0), decide(cov, at_least=0)
        out.append(_check(TARGETS[1], agree(s_ent, s_cov),
                          f"agent − 0.97 × G_ema: entropy {_iv(ent, 1, 4)} ({s_ent}); coverage {_iv(cov, 1, 3)} "
                          f"({s_cov}); entropy {mean(a, 'entropy'):.4f} vs {mean(e, 'entropy'):.4f}, coverage "
                          f"{mean(a, 'coverage'):.3f} vs {mean(e, 'coverage'):.3f}"))
        parts, statuses = [], []
        for c in ["random walk", *[f"truncation ψ={p}" for p in PSIS]]:
            q_status, q_detail = quality(lambda v, m, c=c: v(a, m) - v(c, m), at_most=0)
            h = st(lambda v, c=c: v(a, "entropy") - 0.97 * v(c, "entropy"))
            statuses.append(all_of([q_status, decide(h, at_least=0)]))
            parts.append(f"{c}: agent − it {q_detail}; entropy − 0.97 × its {_iv(h, 1, 4)} → {statuses[-1]}")
        out.append(_check(TARGETS[2], all_of(statuses), " · ".join(parts)))
        q_status, q_detail = quality(lambda v, m: (v(e, m) - v(a, m)) - 0.8 * (v(e, m) - v(g, m)), at_least=0)
        ea, eg = mean(a, "evals"), mean(g, "evals")
        cheap = ea <= eg / (2 * k + 1)
        gain_a, gain_g = mean(e, "fid") - mean(a, "fid"), mean(e, "fid") - mean(g, "fid")
        out.append(_check(TARGETS[3].format(k=2 * k + 1), all_of([q_status, PASS if cheap else FAIL]),
                          f"agent's gain − 0.8 × greedy's: {q_detail}; FID gain {gain_a:+.2f} vs {gain_g:+.2f} "
                          f"({_pct(gain_a / gain_g if gain_g else float('nan'))}); evals {ea:.1f} vs {eg:.1f}/"
                          f"{2 * k + 1} = {eg / (2 * k + 1):.1f} ({'PASS' if cheap else 'FAIL'})"))
    who, base = (GOAL_AGENT, GOAL_EMA) if goal_only else (AGENT, EMA)
    dp = st(lambda v: v(who, "dprime_acc") - v(base, "dprime_acc"))
    out.append(_check(TARGETS[4], decide(dp, at_most=DPRIME_MARGIN),
                      f"{who} − G_ema: {_iv(dp, 1, 3)}; {mean(who, 'dprime_acc'):.3f} vs "
                      f"{mean(base, 'dprime_acc'):.3f}"))
    if result["goal_rows"]:
        succ = st(lambda v: v(GOAL_AGENT, "success"))
        s_succ = decide(succ, at_least=0.9)
        q_status, q_detail = quality(lambda v, m: v(GOAL_AGENT, m) - 1.2 * v(GOAL_EMA, m), at_most=0)
        out.append(_check(TARGETS[5], all_of([s_succ, q_status]),
                          f"success {_iv(succ, 100, 1)} % ({s_succ}); steered − 1.2 × G_ema: {q_detail}; FID "
                          f"{mean(GOAL_AGENT, 'fid'):.2f} vs {mean(GOAL_EMA, 'fid'):.2f} "
                          f"({mean(GOAL_AGENT, 'fid') / mean(GOAL_EMA, 'fid'):.2f}×), KID×10³ "
                          f"{1e3 * mean(GOAL_AGENT, 'kid'):.2f} vs {1e3 * mean(GOAL_EMA, 'kid'):.2f}"
                          + ("" if result["meta"].get("judge_independent", True) else
                             "; RewardNet is this agent's reward classifier, so KID here is not independent")))
    else:
        out.append({"target": "goal steering", "status": "N/A", "detail": "checkpoint has beta_goal = 0 (no goals)"})
    return out


TARGETS = ["agent FID ≤ 0.85 × G_ema FID (both metrics)",
           "agent keeps G_ema's diversity: entropy and coverage ≥ 0.97 × G_ema's",
           "agent better than random walk and every truncation (both metrics), entropy ≥ 0.97 × theirs",
           "agent ≥ 80 % of greedy's quality gain (both metrics) with ≤ 1/(2K+1) = 1/{k} of its evals",
           f"exploit check: D′ accuracy on agent ≤ on G_ema + {DPRIME_MARGIN}",
           "goal steering: success ≥ 90 % and steered quality ≤ 1.2 × G_ema's (both metrics)"]


def _check(target: str, status: str, detail: str) -> dict[str, Any]:
    return {"target": target, "status": status, "detail": detail}


def _iv(iv: Interval | dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """"+1.23 [+0.45, +2.01]" (the estimate and its 95 % interval)."""
    m, lo, hi = (iv.mean, iv.lo, iv.hi) if isinstance(iv, Interval) else (iv["mean"], iv["lo"], iv["hi"])
    return f"{m * scale:+.{digits}f} [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.0%}"


# ---------------------------------------------------------------------------------------------------- report
COLUMNS = [("fid", "FID ↓", 2, 1.0), ("kid", "KID×10³ ↓ (judge)", 2, 1e3), ("density", "density", 3, 1.0),
           ("coverage", "coverage ↑", 3, 1.0), ("entropy", "digit entropy", 4, 1.0),
           ("dbar_logit", "mean D̄ logit", 2, 1.0), ("displacement", "‖z_T − z_0‖", 2, 1.0),
           ("evals", "G+D evals/sample", 1, 1.0), ("ms", "ms/sample", 3, 1.0), ("dprime_acc", "D′ acc ↓", 3, 1.0)]
GOAL_COLUMNS = [("success", "success (metric clf) ↑", 3, 1.0), *COLUMNS]
PAIRED_COLUMNS = [("fid", "ΔFID", 2, 1.0), ("kid", "ΔKID×10³ (judge)", 2, 1e3), ("fid_r", "ΔFID (judge)", 2, 1.0),
                  ("density", "Δdensity", 3, 1.0), ("coverage", "Δcoverage", 3, 1.0),
                  ("entropy", "Δentropy", 4, 1.0), ("dprime_acc", "ΔD′ acc", 3, 1.0)]


def _cell(stat: dict[str, float], digits: int, scale: float = 1.0) -> str:
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def markdown_table(table: dict[str, dict[str, dict[str, float]]], columns: list[tuple[str, str, int, float]]) -> str:
    head = "| method | " + " | ".join(c[1] for c in columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    lines = [head, sep]
    for name, stats in table.items():
        lines.append(f"| {name} | " + " | ".join(_cell(stats[key], d, sc) for key, _, d, sc in columns) + " |")
    return "\n".join(lines)


def paired_table(pairs: dict[str, dict[str, dict[str, Any]]], names: list[str],
                 columns: list[tuple[str, str, int, float]]) -> str:
    """method | each metric's difference [95 % CI] | ΔFID of each seed alone."""
    lines = ["| method | " + " | ".join(c[1] for c in columns) + " | ΔFID per seed |",
             "|---|" + "---:|" * (len(columns) + 1)]
    for name in names:
        if name not in pairs:
            continue
        p = pairs[name]
        cells = [_iv(p[key], sc, d) if key in p else "—" for key, _, d, sc in columns]
        seeds = " / ".join(f"{s[0]:+.2f}" for s in p["fid"]["per_seed"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seeds} |")
    return "\n".join(lines)


def verdict_text(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"- **{c['status']}** {c['target']}: {c['detail']}" for c in checks)


MARKERS = "osD^v<>phX"  # colour and shape both differ, so the legend stays readable where points crowd


def plot(summ: dict[str, Any], path: str | Path) -> Path:
    """FID (MetricNet) and KID (the RewardNet judge) vs G+D evaluations per sample (log x), one point per method
    with error bars over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=110)
    for ax, (key, label, scale) in zip(axes, (("fid", "MetricNet FID", 1.0), ("kid", "RewardNet KID×10³", 1e3))):
        values = [s[key]["mean"] * scale for s in summ["rows"].values()]
        at_one = 0
        for i, (name, s) in enumerate(summ["rows"].items()):
            x, y = s["evals"]["mean"], s[key]["mean"] * scale
            if x <= 0:  # the real-digit floor costs nothing: a horizontal line
                ax.axhline(y, color="grey", ls=":", lw=1, label=f"{name}: {y:.1f}")
                continue
            if x == 1.0:  # several plain samplers share x = 1: fan them out a little so each stays readable
                x *= 1.12 ** at_one
                at_one += 1
            star = name.startswith("DQN")
            ax.errorbar(x, y, xerr=s["evals"]["std"], yerr=s[key]["std"] * scale,
                        fmt="*" if star else MARKERS[i % 10], ms=15 if star else 7, capsize=3, color=f"C{i % 10}",
                        label=name)
        ax.set_xscale("log")
        if min(values) > 0 and max(values) > 4 * min(values):  # one far-off method would flatten the rest
            ax.set_yscale("log")
        ax.set_xlabel("G+D evaluations per sample (log; points at 1 fanned out)")
        ax.set_ylabel(f"{label} (lower is better)" + (", log" if ax.get_yscale() == "log" else ""))
        ax.grid(True, which="both", alpha=0.3)
    m = summ["meta"]
    fig.suptitle(f"Does the agent help?  N={m['n']}, seeds {_seeds(m['seed_list'])}, mean ± std over seeds",
                 fontsize=10)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _seeds(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds)) or "none"


def _moves(summ: dict[str, Any]) -> str:
    parts = [f"{name} {stats['moves']['mean']:.2f}"
             for table in (summ["rows"], summ["goal_rows"]) for name, stats in table.items() if "moves" in stats]
    return "mean moves per sample: " + ", ".join(parts)


def report_markdown(summ: dict[str, Any], command: str, plot_name: str | None, seconds: float) -> str:
    m, cfg, st = summ["meta"], summ["meta"]["config"], summ["meta"]["settings"]
    k = cfg["n_dirs"]
    judge = ("RewardNet, a network that neither trained nor selected this agent" if m["judge_independent"] else
             "RewardNet, which is this goal agent's reward classifier: for the goal rows it is *not* independent")
    selection = (f"selection seeds (declared with --selection-seeds, never reported): {_seeds(m['selection_seeds'])}"
                 if m["selection_seeds"] else "no selection seeds declared (--selection-seeds)")
    lines = [
        "# Does the agent help? — evaluation report", "",
        f"- command: `{command}`",
        f"- checkpoint: step {m['checkpoint_step']}, {m['agent_steps']} agent steps; K={k} {cfg['directions']} "
        f"directions, δ={cfg['delta']}, T={cfg['horizon']}, λ={cfg['lam_prior']}, β={cfg['beta_goal']}, "
        f"width {cfg['width']}",
        f"- **N = {m['n']}** samples per row; **reported seeds {_seeds(m['seed_list'])}** (seed s: z_0 ~ N(0, I) from "
        f"torch seed s, the same z_0 for every row); {selection}",
        f"- tables: mean ± sample std over seeds; differences: paired (the same z), the mean over seeds with a 95 % "
        f"bootstrap interval ({m['bootstrap']} replicates per seed, resampling the N samples; basic interval "
        f"centred on the estimate)",
        f"- quality metrics: **FID** on MetricNet's features, and a second judge, **{judge}**: KID, FID, density and "
        "coverage on its features",
        f"- reference set: {m['reference']}" + (f"; floor row: {m['floor']}" if m["floor"] else ""),
        f"- hardware: {m['hardware']}; evaluation took {seconds:.0f} s",
        "",
        markdown_table(summ["rows"], COLUMNS), "",
    ]
    if summ["goal_rows"]:
        lines += ["Goal steering (goals 0–9 equally often, success judged by the metric classifier, not the reward "
                  "one):", "", markdown_table(summ["goal_rows"], GOAL_COLUMNS), ""]
    lines += ["## Paired differences to G_ema (same z; mean over seeds [95 % bootstrap CI])", "",
              paired_table(summ["paired"], list(summ["rows"]), PAIRED_COLUMNS), ""]
    if summ["goal_rows"]:
        lines += ["Goal rows, against G_ema's samples from the same z (Δsuccess as a fraction of the N samples):", "",
                  paired_table(summ["paired"], list(summ["goal_rows"]),
                               [("success", "Δsuccess", 3, 1.0), *PAIRED_COLUMNS]), ""]
    if plot_name:
        lines += [f"![FID and KID vs G+D evaluations per sample]({plot_name})", ""]
    lines += ["## Verdict (PASS / FAIL only where the 95 % intervals say so and both quality metrics agree)", "",
              verdict_text(summ["verdict"]), "",
              "## How each row is made", "",
              "- **G raw / G_ema**: G (eval mode) and its EMA copy on z_0. **truncation ψ**: G_ema(ψ·z_0).",
              f"- **random walk**: T={cfg['horizon']} uniformly random moves ±δ along the agent's directions (never "
              "stop).",
              f"- **greedy search (D̄)**: at each step score Φ for all 2K={2 * k} moves (Φ of the current z is "
              "cached), take the best, stop when none improves Φ; no learning.",
              f"- **best-of-M (D̄)**: z_0 plus M−1 fresh latents, keep the highest D̄ logit; M = {m['best_of_m']}"
              + ("" if st["best_of"] else " (the default 2K+1: the Φ evaluations of one greedy step)") + ".",
              f"- **gradient ascent in z**: {st['grad_steps']} steps z ← z + ε/2·∇Φ + √ε·σ·ξ with ε={st['grad_eps']}, "
              f"σ={st['grad_noise']} (DOT/DDLS-style; Φ holds the prior term).",
              "- **DQN agent (greedy)**: `Trainer.refine`, argmax-Q moves until it picks stop or T steps; "
              + ("" if cfg.get("q_state") in (None, "z") else f"its Q-network also sees q_state={cfg['q_state']} "
                 "of G(z), computed through G and D̄ at every decision (counted in G+D evals); ")
              + f"{_moves(summ)}."
              + (" On this goal checkpoint the unconditional row runs the agent with no goal, a state it never "
                 "trained on (its episodes always carry a goal): the CLI, `Lab` and the app refuse exactly this, and "
                 "the row is here only to show why." if cfg["beta_goal"] > 0 else ""),
              "- **G+D evals/sample**: forward passes of G plus of D̄ (a backward pass counts one more of each): a "
              "plain sample is 1, one Φ value 2, one gradient step 4. Not counted: the Q-network (a small MLP) and, "
              "on goal rows, the reward classifier inside each goal Φ (about twice G+D at width 0.25; greedy and the "
              "agent both pay it). The ms column includes everything except scoring; single process.",
              f"- **D′ acc**: a fresh quarter-width DCGAN discriminator (no batch norm) trained {st['dprime_steps']} "
              f"Adam steps (lr 2e-3, batch {st['dprime_batch']}, half real/half fake) on N/2 reference digits vs N/2 "
              "samples, accuracy on the other halves; same init and data order for every row of a seed (0.5 = "
              "indistinguishable; the floor row shows D′'s chance level); its interval resamples the held-out halves.",
              "- **FID** is classifier-FID on MetricNet's 64-d features, **KID** (Bińkowski et al. 2018) the unbiased "
              "squared MMD with the cubic polynomial kernel, **density / coverage** (Naeem et al. 2020, k = 5) the "
              "mean number of real k-NN balls holding a sample (÷ k; fidelity) and the share of real balls holding "
              "any sample (diversity); the last three on RewardNet's 64-d features, each unit standardised by the "
              "reference digits' mean and std (raw units reach ~10 and would dominate the kernel and the balls). "
              "FID and density/coverage depend "
              "on N: compare rows, not other reports at another N.",
              "- **intervals**: replicate b of a seed resamples the N indices once for every row (paired on z; D′'s "
              "held-out halves likewise); the pooled replicate is the mean over seeds; basic bootstrap interval, "
              "centred on the estimate (a resample holds ~63 % distinct samples, which shifts coverage down and FID "
              "up: a bias of resampling, not of the metric at this N). "
              "The reference digits and the networks are held fixed. A target passes when its whole interval is on "
              "the right side of the bound, fails when it is wholly on the wrong side, and is inconclusive otherwise; "
              "quality targets need MetricNet-FID and the judge's KID to agree.", ""]
    return "\n".join(lines)
