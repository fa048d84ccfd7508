"""Latent-space maths for the Explore and Draw tabs, on a Trainer's public API only (generate, refine, score,
q_values, directions): z from a seed and slider offsets, Q at z, one greedy agent move, the seeded random-walk
baseline, the reward classifier's digit guess, the potential Φ over a plane, interpolation, and projecting a drawing
into z.

Everything runs under torch.no_grad except the projection, which optimises z through a private copy of G (the live
G_ema is updated in place by training, which would invalidate autograd's saved tensors mid-backward).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..data import to_float
from ..directions import action_labels, action_moves
from ..env import action_axis
from ..runner import Runner

log = logging.getLogger(__name__)
WALK_BLOCK = 256  # random-walk actions are drawn in blocks of this many (config caps horizon at 256)
_classifiers: dict[str, torch.nn.Module | None] = {}  # device -> the reward classifier (None: its file is missing)
_classifiers_lock = threading.Lock()


def goal_tensor(goal: int | None, n: int, device: torch.device) -> torch.Tensor:
    return torch.full((n,), -1 if goal is None else int(goal), dtype=torch.long, device=device)


def seed_z(z_dim: int, seed: int) -> torch.Tensor:
    """The base latent of a seed (1, z_dim), independent of any trainer's RNG."""
    return torch.randn(1, z_dim, generator=torch.Generator().manual_seed(int(seed)))


def directions(runner: Runner) -> torch.Tensor:
    return runner.directions()


def z_at(runner: Runner, seed: int, alphas: np.ndarray) -> torch.Tensor:
    """z = z(seed) + sum_i alpha_i d_i (directions are unit vectors: alpha is in standard deviations)."""
    d = directions(runner)
    a = torch.as_tensor(np.asarray(alphas, dtype=np.float32)[: d.shape[0]])
    return seed_z(d.shape[1], seed) + (a @ d[: len(a)]).unsqueeze(0)


def q_values(runner: Runner, z: torch.Tensor, t: int, goal: int | None) -> np.ndarray:
    """Q(s, a) for every action at state (z, t, goal), observed as the agent observes it."""
    return runner.q_values(z, t, goal).numpy()


def potential(runner: Runner, z: torch.Tensor, goal: int | None) -> np.ndarray:
    """Φ for each row of z (the trainer batches it, so a big latent map stays bounded in memory)."""
    return runner.score(z, goal).numpy()


def image(runner: Runner, z: torch.Tensor) -> np.ndarray:
    return runner.generate(z).numpy()


def greedy_move(runner: Runner, alphas: np.ndarray, seed: int, t: int, goal: int | None
                ) -> tuple[int, str, np.ndarray, np.ndarray]:
    """The agent's greedy action at z(seed, alphas): (action, label, Q-values, new alphas)."""
    q = q_values(runner, z_at(runner, seed, alphas), t, goal)[0]
    a = int(np.argmax(q))
    k = directions(runner).shape[0]
    labels = action_labels(k)
    return a, labels[a], q, move(alphas, a, runner.cfg.delta)


def move(alphas: np.ndarray, a: int, delta: float) -> np.ndarray:
    """The slider offsets after action a (a copy): action 2i+1 is +delta along d_i, 2i+2 is -delta, 0 is stop."""
    new = np.array(alphas, dtype=np.float64)
    if a > 0:
        i, sign = action_axis(a)
        new[i] += sign * delta
    return new


def random_actions(k: int, n: int, seed: int) -> list[int]:
    """n uniformly random non-stop actions (1..2k) from a seeded generator: the baseline the agent is compared with.

    Drawn in fixed blocks, so the first m actions are the same for every n >= m: the walk grows step by step with
    the agent's animation instead of being redrawn."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    out: list[int] = []
    while len(out) < n:
        out += [int(a) for a in rng.integers(1, 2 * k + 1, size=WALK_BLOCK)]
    return out[:n]


def shadow_walk(agent_actions: Sequence[int], k: int, seed: int) -> list[int]:
    """A random action wherever the agent moved, stop wherever it stopped: the same number of moves, step-aligned with
    the agent (so both Φ curves have one point per agent step)."""
    rnd = iter(random_actions(k, sum(1 for a in agent_actions if int(a) != 0), seed))
    return [next(rnd) if int(a) != 0 else 0 for a in agent_actions]


def walk_alphas(start: np.ndarray, actions: Sequence[int], delta: float) -> list[np.ndarray]:
    """Slider offsets along a sequence of actions: the start and one entry per action."""
    out = [np.array(start, dtype=np.float64)]
    for a in actions:
        out.append(move(out[-1], int(a), delta))
    return out


def walk_z(z0: torch.Tensor, actions: Sequence[int], dirs: torch.Tensor, delta: float) -> torch.Tensor:
    """(len(actions) + 1, z_dim) latents along a sequence of actions from z0 (1, z_dim), on the CPU."""
    z0 = z0.detach().float().cpu().reshape(1, -1)
    if not len(actions):
        return z0
    steps = action_moves(torch.as_tensor([int(a) for a in actions], dtype=torch.long), dirs.float().cpu(), delta)
    return torch.cat([z0, z0 + steps.cumsum(0)])


def reward_classifier(runner: Runner) -> torch.nn.Module | None:
    """The classifier behind the goal reward: the trainer's own (β > 0), else loaded once per device; None (logged
    once) if its file is missing, and the UI then shows no digit guesses."""
    own = getattr(runner, "reward_classifier", None)
    if own is not None:
        return own
    key = str(runner.device)
    with _classifiers_lock:
        if key not in _classifiers:
            from ..metrics import load_classifier
            try:
                _classifiers[key] = load_classifier("reward", runner.device)
            except (FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
                log.warning("no digit guesses in the explorer: %s", exc)
                _classifiers[key] = None
        return _classifiers[key]


def guess_digits(runner: Runner, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The reward classifier's digit and its probability for each uint8 (N, 28, 28) frame; None without one."""
    clf = reward_classifier(runner)
    if clf is None or len(frames) == 0:
        return None
    from ..metrics import batched

    logits = batched(clf, "forward", torch.as_tensor(np.asarray(frames, dtype=np.uint8)), runner.device)
    p = torch.softmax(logits.float(), dim=1)
    conf, digit = p.max(dim=1)
    return digit.numpy(), conf.numpy()


def rollout(runner: Runner, alphas: np.ndarray, seed: int, goal: int | None, t0: int = 0
            ) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """Greedy moves until the agent stops or the horizon ends (one item per step, for animation)."""
    t = t0
    while t < runner.cfg.horizon:
        a, label, q, alphas = greedy_move(runner, alphas, seed, t, goal)
        t += 1
        yield a, label, q, alphas
        if a == 0:
            return


def plane(runner: Runner, seed: int, alphas: np.ndarray, i: int, j: int, span: float, res: int
          ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Axes (absolute alpha_i, alpha_j values centred on the current ones) and the (res*res, z_dim) latents, row-major
    with v (alpha_j) along rows."""
    d = directions(runner)
    u = alphas[i] + np.linspace(-span, span, res)
    v = alphas[j] + np.linspace(-span, span, res)
    z = z_at(runner, seed, alphas)
    du = torch.as_tensor(u - alphas[i], dtype=torch.float32)
    dv = torch.as_tensor(v - alphas[j], dtype=torch.float32)
    grid = z + dv.view(-1, 1, 1) * d[j] + du.view(1, -1, 1) * d[i]  # (res_v, res_u, z_dim)
    return u, v, grid.reshape(-1, d.shape[1])


def slerp(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """Spherical interpolation (keeps |z| typical of the Gaussian, unlike a straight line through the origin)."""
    a, b = a.flatten(), b.flatten()
    cos = torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0)
    omega = torch.arccos(cos)
    ts = torch.linspace(0, 1, n)
    if omega.abs() < 1e-4:
        return torch.stack([(1 - t) * a + t * b for t in ts])
    so = torch.sin(omega)
    return torch.stack([(torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so for t in ts])


def project(runner: Runner, target_uint8: np.ndarray, steps: int = 150, restarts: int = 64, lr: float = 0.05,
            prior: float = 1e-3) -> Iterator[tuple[int, float, torch.Tensor]]:
    """Find z with G(z) close to a 28x28 drawing: best of `restarts` random z, then Adam on z.

    Yields (step, loss, z) every 10 steps and at the end, so the UI can show progress."""
    g = runner.generator_copy()  # a private copy: training updates G_ema in place
    for p in g.parameters():
        p.requires_grad_(False)
    x = to_float(torch.as_tensor(target_uint8, dtype=torch.uint8).unsqueeze(0)).to(runner.device)
    z_dim = runner.cfg.z_dim
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cand = torch.randn(restarts, z_dim, generator=gen).to(runner.device)
        err = (g(cand) - x).pow(2).flatten(1).mean(1)
        z = cand[err.argmin()].unsqueeze(0).clone()
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for s in range(1, steps + 1):
        loss = (g(z) - x).pow(2).mean() + prior * z.pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s % 10 == 0 or s == steps:
            yield s, float(loss.detach()), z.detach().cpu()
