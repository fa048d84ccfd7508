"""Does the agent help? Every sampler from the same starting z, scored the same way (issue 3, deliverable 1).

Rows: G raw, G_ema, truncation, random walk, greedy search on Phi, best-of-M by D_bar, gradient ascent on Phi in z
(DOT/DDLS-style) and the DQN agent; plus goal-steering rows when the checkpoint has beta_goal > 0. Columns: classifier
FID (MetricNet), digit-histogram entropy, mean D_bar logit, mean |z_T - z_0|, G+D evaluations and wall-clock per
sample, and the accuracy of a fresh two-sample discriminator D' (the exploit check, algorithms.md section 7).

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

from .data import ImageData, load_dataset, to_float, to_uint8
from .env import action_table, no_goal, potential
from .metrics import FIDScorer, digit_entropy, load_classifier
from .models import Discriminator, dcgan_init

CHUNK = 1024  # latents per G/D forward: bounds memory (greedy scores N x 2K candidates); fastest on a 2-core CPU
PSIS = (0.5, 0.7, 0.9)
REFERENCE = "mnist5k"  # the embedded digits the metric classifier was trained against (dqngan/assets/classifiers.json)


class EvaluateError(ValueError):
    """The checkpoint or the arguments cannot be evaluated (one-line message)."""


@dataclass
class Settings:
    n: int = 2000
    seeds: int = 3
    best_of: int = 0  # candidates per sample for best-of-M; 0 = 2K+1, the Phi evaluations of one greedy step
    grad_steps: int = 20
    grad_eps: float = 0.05  # DDLS step: z += eps/2 grad Phi + sqrt(eps) sigma xi
    grad_noise: float = 0.0  # sigma; 0 = deterministic ascent (DOT-like), 1 = DDLS Langevin on exp(Phi)
    dprime_steps: int = 400
    dprime_batch: int = 64


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
def two_sample_accuracy(real: torch.Tensor, fake: torch.Tensor, seed: int, steps: int = 400, batch: int = 64,
                        device: torch.device | str = "cpu") -> float:
    """Held-out accuracy of a fresh small D' trained on half of real vs half of fake (uint8 images).

    Same architecture (a quarter-width DCGAN discriminator without batch norm: with it, the train/eval switch made the
    accuracy jump between 0.52 and 0.9 across seeds), init, data order and budget for every method at a given seed, so
    only the fake images differ. 0.5 = indistinguishable from real."""
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
        correct = (net(test_r.to(device)) > 0).sum() + (net(test_f.to(device)) <= 0).sum()
    return float(correct) / (len(test_r) + len(test_f))


# ---------------------------------------------------------------------------------------------------- scoring
@dataclass
class Scorer:
    fid: FIDScorer
    d_bar: nn.Module
    real_for_dprime: torch.Tensor
    settings: Settings
    device: torch.device

    @torch.no_grad()
    def row(self, s: Samples, seed: int, goals: torch.Tensor | None = None) -> dict[str, float]:
        logits = self.fid.logits(s.images)
        dbar = torch.cat([self.d_bar(to_float(c).to(self.device)).float().cpu() for c in s.images.split(CHUNK)])
        out = {
            "fid": self.fid.score(s.images),
            "entropy": digit_entropy(logits),
            "dbar_logit": float(dbar.mean()),
            "displacement": float((s.z_t - s.z0).norm(dim=1).mean()),
            "evals": float(s.evals.mean()),
            "ms": 1000.0 * s.seconds / len(s.images),
            "dprime_acc": two_sample_accuracy(self.real_for_dprime, s.images, seed, self.settings.dprime_steps,
                                              self.settings.dprime_batch, self.device),
        }
        if goals is not None:
            out["success"] = self.success(s, goals, logits)
        return out

    def success(self, s: Samples, goals: torch.Tensor, logits: torch.Tensor | None = None) -> float:
        """Fraction of samples the metric classifier (not the reward one) reads as their goal digit."""
        logits = self.fid.logits(s.images) if logits is None else logits
        return float((logits.argmax(1) == goals.cpu()).float().mean())


def reference(n: int, device: torch.device) -> tuple[ImageData, FIDScorer]:
    data = load_dataset(REFERENCE)
    if n > len(data.images):
        raise EvaluateError(f"--n {n} exceeds the {len(data.images)} reference digits")
    return data, FIDScorer(data.images, n=n, device=device, classifier=load_classifier("metric", device))


# ---------------------------------------------------------------------------------------------------- the run
ROWS = ["real digits (floor)", "G raw", "G_ema", *[f"truncation ψ={p}" for p in PSIS], "random walk",
        "greedy search (D̄)", "best-of-M (D̄)", "gradient ascent in z", "DQN agent (greedy)"]
GOAL_ROWS = ["goal: none (G_ema)", "goal: random walk", "goal: greedy search", "goal: DQN agent"]


def evaluate(trainer: Any, settings: Settings, progress: bool = True) -> dict[str, Any]:
    """Run every method on every seed; returns {"meta", "rows", "goal_rows"} with per-seed values."""
    from tqdm import tqdm

    cfg = trainer.cfg
    if cfg.dataset not in ("mnist5k", "mnist"):
        raise EvaluateError(f"classifier-FID is defined for MNIST only; this checkpoint trained on {cfg.dataset!r}")
    if settings.n < 2:
        raise EvaluateError(f"--n must be >= 2 (FID needs a covariance), got {settings.n}")
    dev = trainer.device
    ctx = context(trainer)
    data, fid = reference(settings.n, dev)
    real_ref = data.images[fid.real_idx]
    rest = torch.ones(len(data.images), dtype=torch.bool)
    rest[fid.real_idx] = False
    rest_idx = rest.nonzero().squeeze(1)  # digits outside the FID reference: the floor row draws from these
    scorer = Scorer(fid, ctx.d_bar, real_ref, settings, dev)
    goal_on = cfg.beta_goal > 0 and ctx.reward_clf is not None
    n_methods = len(ROWS) - (0 if len(rest_idx) >= settings.n else 1) + (len(GOAL_ROWS) if goal_on else 0)
    bar = tqdm(total=settings.seeds * n_methods, desc="evaluate", unit="row", disable=not progress, leave=False)
    rows: dict[str, list[dict[str, float]]] = {}
    goal_rows: dict[str, list[dict[str, float]]] = {}
    m = settings.best_of or 2 * cfg.n_dirs + 1  # default: the Phi values of one greedy step

    def tick(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    for seed in range(settings.seeds):
        r, g = _one_seed(trainer, ctx, scorer, data.images, rest_idx, settings, m, seed, goal_on, tick)
        for table, part in ((rows, r), (goal_rows, g)):
            for name, values in part.items():
                table.setdefault(name, []).append(values)
    bar.close()
    meta = {
        "n": settings.n, "seeds": settings.seeds, "settings": settings.__dict__.copy(), "best_of_m": m,
        "reference": f"{settings.n} fixed {REFERENCE} digits (FIDScorer subset, seed 0); metric classifier MetricNet",
        "floor": "N other mnist5k digits (disjoint from the reference)" if ROWS[0] in rows else None,
        "config": {k: getattr(cfg, k, None) for k in ("z_dim", "n_dirs", "delta", "horizon", "lam_prior",
                                                      "beta_goal", "directions", "width", "q_state")},
        "checkpoint_step": trainer.step_count, "agent_steps": trainer.agent_steps,
        "hardware": hardware(dev),
    }
    return {"meta": meta, "rows": rows, "goal_rows": goal_rows}


def _one_seed(trainer: Any, ctx: Ctx, scorer: Scorer, real: torch.Tensor, rest_idx: torch.Tensor,
              settings: Settings, m: int, seed: int, goal_on: bool, tick: Callable[[str], None]
              ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Every row for one seed, all from the same z_0; returns (rows, goal rows)."""
    n, dev = settings.n, ctx.device
    z0 = torch.randn(n, trainer.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(dev)
    rng = [torch.Generator().manual_seed(10_000 * (seed + 1) + i) for i in range(4)]
    rows: dict[str, dict[str, float]] = {}
    goal_rows: dict[str, dict[str, float]] = {}

    def add(name: str, s: Samples, goals: torch.Tensor | None = None, same_as: str | None = None) -> None:
        if same_as is not None:  # the very same images: only the success rate is new
            goal_rows[name] = {**rows[same_as], "success": scorer.success(s, goals)}
        else:
            (goal_rows if goals is not None else rows)[name] = scorer.row(s, seed, goals)
        tick(name)

    if len(rest_idx) >= n:
        pick = rest_idx[torch.randperm(len(rest_idx), generator=rng[0])[:n]]
        add(ROWS[0], Samples(real[pick], z0, z0, torch.zeros(n)))
    add("G raw", timed(sample_g, ctx, z0, raw=True))
    add("G_ema", timed(sample_g, ctx, z0))
    for psi in PSIS:
        add(f"truncation ψ={psi}", timed(sample_g, ctx, z0, psi=psi))
    walk = timed(random_walk, ctx, z0, rng[1])
    add("random walk", walk)
    greedy = timed(greedy_search, ctx, z0)
    add("greedy search (D̄)", greedy)
    add("best-of-M (D̄)", timed(best_of, ctx, z0, m, rng[2]))
    add("gradient ascent in z", timed(gradient_refine, ctx, z0, settings.grad_steps, settings.grad_eps,
                                      settings.grad_noise, rng[3]))
    agent = timed(dqn_agent, trainer, ctx, z0)
    add("DQN agent (greedy)", agent)
    rows["DQN agent (greedy)"]["moves"] = agent.extra["moves"]
    if goal_on:
        goals = (torch.arange(n) % 10).to(dev)  # every digit equally often
        add(GOAL_ROWS[0], timed(sample_g, ctx, z0), goals, same_as="G_ema")
        add(GOAL_ROWS[1], walk, goals, same_as="random walk")
        add(GOAL_ROWS[2], timed(greedy_search, ctx, z0, goals), goals)
        agent_goal = timed(dqn_agent, trainer, ctx, z0, goals)
        add(GOAL_ROWS[3], agent_goal, goals)
        goal_rows[GOAL_ROWS[3]]["moves"] = agent_goal.extra["moves"]
    return rows, goal_rows


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
def summarise(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-metric mean and sample std (ddof=1; 0 with one seed) over seeds."""
    out = {}
    for key in values[0]:
        v = np.array([d[key] for d in values], dtype=np.float64)
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "values": v.tolist()}
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The result with every row reduced to mean/std per metric (what the table, plot, verdict and JSON show)."""
    return {"meta": result["meta"],
            "rows": {k: summarise(v) for k, v in result["rows"].items()},
            "goal_rows": {k: summarise(v) for k, v in result["goal_rows"].items()}}


def verdict(summ: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's targets, each PASS/FAIL with the numbers behind it (means over seeds)."""
    rows, goal_rows, k = summ["rows"], summ["goal_rows"], summ["meta"]["config"]["n_dirs"]

    def m(row: str, key: str, table: dict | None = None) -> float:
        return (table or rows)[row][key]["mean"]

    agent, ema, greedy = "DQN agent (greedy)", "G_ema", "greedy search (D̄)"
    fa, fe, ha, he = m(agent, "fid"), m(ema, "fid"), m(agent, "entropy"), m(ema, "entropy")
    out = [
        _check("agent FID ≤ 0.85 × G_ema FID", fa <= 0.85 * fe, f"{fa:.2f} vs 0.85 × {fe:.2f} = {0.85 * fe:.2f}"),
        _check("agent entropy ≥ 0.97 × G_ema entropy", ha >= 0.97 * he,
               f"{ha:.4f} vs 0.97 × {he:.4f} = {0.97 * he:.4f}"),
    ]
    # "better at equal or higher entropy": lower FID, and entropy within the issue's own 3 % of the comparator's.
    parts, ok = [], True
    for c in ["random walk", *[f"truncation ψ={p}" for p in PSIS]]:
        fc, hc = m(c, "fid"), m(c, "entropy")
        win = fa < fc and ha >= 0.97 * hc
        ok &= win
        parts.append(f"{c}: FID {fc:.2f}, H {hc:.4f} ({'beaten' if win else 'not beaten'})")
    out.append(_check("agent better than random walk and truncation at ≥ entropy", ok,
                      f"agent FID {fa:.2f}, H {ha:.4f}; " + "; ".join(parts)))
    fg, ea, eg = m(greedy, "fid"), m(agent, "evals"), m(greedy, "evals")
    gain_g, gain_a = fe - fg, fe - fa
    frac = gain_a / gain_g if gain_g > 0 else float("nan")
    out.append(_check(f"agent ≥ 80 % of greedy's FID gain with ≤ 1/(2K+1) = 1/{2 * k + 1} of its evals",
                      gain_g > 0 and gain_a >= 0.8 * gain_g and ea <= eg / (2 * k + 1),
                      f"gain agent {gain_a:+.2f} vs greedy {gain_g:+.2f} ({_pct(frac)}); evals {ea:.1f} vs "
                      f"{eg:.1f}/{2 * k + 1} = {eg / (2 * k + 1):.1f}" + ("" if gain_g > 0 else
                                                                          "; greedy search does not lower FID")))
    da, de = m(agent, "dprime_acc"), m(ema, "dprime_acc")
    out.append(_check("exploit check: D′ accuracy on agent ≤ on G_ema", da <= de, f"{da:.3f} vs {de:.3f}"))
    if goal_rows:
        g = "goal: DQN agent"
        sa, fs = m(g, "success", goal_rows), m(g, "fid", goal_rows)
        out.append(_check("goal steering: success ≥ 90 % and steered FID ≤ 1.2 × G_ema FID",
                          sa >= 0.9 and fs <= 1.2 * fe, f"success {sa:.1%}; FID {fs:.2f} vs 1.2 × {fe:.2f} = "
                                                         f"{1.2 * fe:.2f}"))
    else:
        out.append({"target": "goal steering", "status": "N/A", "detail": "checkpoint has beta_goal = 0 (no goals)"})
    return out


def _check(target: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"target": target, "status": "PASS" if ok else "FAIL", "detail": detail}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.0%}"


COLUMNS = [("fid", "FID ↓", 2), ("entropy", "digit entropy", 4), ("dbar_logit", "mean D̄ logit", 2),
           ("displacement", "‖z_T − z_0‖", 2), ("evals", "G+D evals/sample", 1), ("ms", "ms/sample", 3),
           ("dprime_acc", "D′ acc ↓", 3)]
GOAL_COLUMNS = [("success", "success (metric clf) ↑", 3), *COLUMNS]


def _cell(stat: dict[str, float], digits: int) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(table: dict[str, dict[str, dict[str, float]]], columns: list[tuple[str, str, int]]) -> str:
    head = "| method | " + " | ".join(c[1] for c in columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    lines = [head, sep]
    for name, stats in table.items():
        lines.append(f"| {name} | " + " | ".join(_cell(stats[key], d) for key, _, d in columns) + " |")
    return "\n".join(lines)


def verdict_text(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"- **{c['status']}** {c['target']}: {c['detail']}" for c in checks)


MARKERS = "osD^v<>phX"  # colour and shape both differ, so the legend stays readable where points crowd


def plot(summ: dict[str, Any], path: str | Path) -> Path:
    """FID vs G+D evaluations per sample (log x), one point per method with error bars over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    fids = [s["fid"]["mean"] for s in summ["rows"].values()]
    at_one = 0
    for i, (name, s) in enumerate(summ["rows"].items()):
        x, y = s["evals"]["mean"], s["fid"]["mean"]
        if x <= 0:  # the real-digit floor costs nothing: a horizontal line
            ax.axhline(y, color="grey", ls=":", lw=1, label=f"{name}: {y:.1f}")
            continue
        if x == 1.0:  # several plain samplers share x = 1: fan them out a little so each stays readable
            x *= 1.12 ** at_one
            at_one += 1
        star = name.startswith("DQN")
        ax.errorbar(x, y, xerr=s["evals"]["std"], yerr=s["fid"]["std"], fmt="*" if star else MARKERS[i % 10],
                    ms=15 if star else 7, capsize=3, color=f"C{i % 10}", label=name)
    ax.set_xscale("log")
    if max(fids) > 4 * min(fids):  # one far-off method would flatten the rest on a linear axis
        ax.set_yscale("log")
    ax.set_xlabel("G+D evaluations per sample (log; the points at 1 are fanned out for legibility)")
    ax.set_ylabel("classifier FID (lower is better)" + (", log" if ax.get_yscale() == "log" else ""))
    m = summ["meta"]
    ax.set_title(f"Does the agent help?  N={m['n']}, {m['seeds']} seed(s), mean ± std", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _moves(summ: dict[str, Any]) -> str:
    parts = [f"{name} {stats['moves']['mean']:.2f}"
             for table in (summ["rows"], summ["goal_rows"]) for name, stats in table.items() if "moves" in stats]
    return "mean moves per sample: " + ", ".join(parts)


def report_markdown(summ: dict[str, Any], command: str, plot_name: str | None, seconds: float) -> str:
    m, cfg, st = summ["meta"], summ["meta"]["config"], summ["meta"]["settings"]
    k = cfg["n_dirs"]
    lines = [
        "# Does the agent help? — evaluation report", "",
        f"- command: `{command}`",
        f"- checkpoint: step {m['checkpoint_step']}, {m['agent_steps']} agent steps; K={k} {cfg['directions']} "
        f"directions, δ={cfg['delta']}, T={cfg['horizon']}, λ={cfg['lam_prior']}, β={cfg['beta_goal']}, "
        f"width {cfg['width']}",
        f"- N = {m['n']} samples per row, {m['seeds']} seed(s) (seed s: z_0 ~ N(0, I) from torch seed s, the same z_0 "
        f"for every row); mean ± sample std over seeds",
        f"- reference set: {m['reference']}" + (f"; floor row: {m['floor']}" if m["floor"] else ""),
        f"- hardware: {m['hardware']}; evaluation took {seconds:.0f} s",
        "",
        markdown_table(summ["rows"], COLUMNS), "",
    ]
    if summ["goal_rows"]:
        lines += ["Goal steering (goals 0–9 equally often, success judged by the metric classifier, not the reward "
                  "one):", "", markdown_table(summ["goal_rows"], GOAL_COLUMNS), ""]
    if plot_name:
        lines += [f"![FID vs G+D evaluations per sample]({plot_name})", ""]
    lines += ["## Verdict against issue 3's targets", "", verdict_text(verdict(summ)), "",
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
                 "trained on (its episodes always carry a goal)." if cfg["beta_goal"] > 0 else ""),
              "- **G+D evals/sample**: forward passes of G plus of D̄ (a backward pass counts one more of each): a "
              "plain sample is 1, one Φ value 2, one gradient step 4. Not counted: the Q-network (a small MLP) and, "
              "on goal rows, the reward classifier inside each goal Φ (about twice G+D at width 0.25; greedy and the "
              "agent both pay it). The ms column includes everything except scoring; single process.",
              f"- **D′ acc**: a fresh quarter-width DCGAN discriminator (no batch norm) trained {st['dprime_steps']} "
              f"Adam steps (lr 2e-3, batch {st['dprime_batch']}, half real/half fake) on N/2 reference digits vs N/2 "
              "samples, accuracy on the other halves; same init and data order for every row of a seed (0.5 = "
              "indistinguishable; the floor row shows D′'s chance level).",
              "- **FID** is classifier-FID on MetricNet's 64-d features at this N only; compare rows, not other "
              "reports at another N.", ""]
    return "\n".join(lines)
