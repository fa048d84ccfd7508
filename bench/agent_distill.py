"""Research probe for issue 3: does more data let a z-only Q-network predict which move raises Phi?

`python bench/agent_distill.py --checkpoint checkpoints/mnist --states 20000 80000 [--device cuda]`

For each data size: draw states the way an agent visits them (z_0 ~ N(0, I) plus t random moves), score all 2K moves
exactly (Phi of each neighbour: what q_targets=all gives a gamma = 0 Q-network), fit the Q-network's MLP to the gains,
then report held-out R^2, the true gain of its argmax move against a random move and the best move, and the FID of a
greedy rollout with it (stop when no predicted gain is positive) next to G_ema and exact greedy search, same z_0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from dqngan import evaluate as ev  # noqa: E402
from dqngan.checkpoint import load_checkpoint  # noqa: E402
from dqngan.directions import action_moves  # noqa: E402
from dqngan.env import no_goal  # noqa: E402
from dqngan.models import QNetwork  # noqa: E402


def states(ctx: ev.Ctx, m: int, gen: torch.Generator) -> torch.Tensor:
    """z_0 ~ N(0, I) moved by t ~ U{0..T-1} random moves: the region an agent's rollouts cover."""
    k = ctx.dirs.shape[0]
    z = torch.randn(m, ctx.dirs.shape[1], generator=gen).to(ctx.device)
    t = torch.randint(0, ctx.horizon, (m,), generator=gen).to(ctx.device)
    for s in range(ctx.horizon - 1):
        a = torch.randint(1, 2 * k + 1, (m,), generator=gen).to(ctx.device)
        z = torch.where((s < t).unsqueeze(1), z + action_moves(a, ctx.dirs, ctx.delta), z)
    return z


@torch.no_grad()
def gains(ctx: ev.Ctx, z: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Phi(z + move_a) - Phi(z) for the 2K moves, (m, 2K)."""
    k2 = 2 * ctx.dirs.shape[0]
    moves = action_moves(torch.arange(1, k2 + 1, device=z.device), ctx.dirs, ctx.delta)
    out = []
    for zc in z.split(chunk):
        cand = torch.cat([zc, (zc.unsqueeze(1) + moves).reshape(-1, zc.shape[1])])
        p, _ = ev.phi_chunked(ctx, cand, no_goal(cand.shape[0], cand.device))
        out.append(p[len(zc):].view(len(zc), k2) - p[: len(zc), None])
    return torch.cat(out)


def fit(x: torch.Tensor, y: torch.Tensor, hidden: int, epochs: int, seed: int) -> QNetwork:
    torch.manual_seed(seed)
    net = QNetwork(x.shape[1], y.shape[1], hidden).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    bs = min(1024, len(x))
    steps = epochs * (len(x) // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        i = torch.randint(0, len(x), (bs,), device=x.device)
        loss = torch.nn.functional.mse_loss(net(x[i]), y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net


@torch.no_grad()
def rollout(ctx: ev.Ctx, net: QNetwork, z0: torch.Tensor) -> torch.Tensor:
    z = z0.clone()
    active = torch.ones(len(z), dtype=torch.bool, device=z.device)
    for _ in range(ctx.horizon):
        q = net(z)
        best, j = q.max(1)
        move = active & (best > 0)
        z[move] = z[move] + action_moves(j[move] + 1, ctx.dirs, ctx.delta)
        active &= move
    return z


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default="checkpoints/mnist")
    p.add_argument("--states", type=int, nargs="+", default=[20000, 80000])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default="")
    a = p.parse_args()
    tr = load_checkpoint(a.checkpoint, device=a.device)
    ctx = ev.context(tr)
    data, scorer = ev.reference(a.n, ctx.device)
    gen = torch.Generator().manual_seed(123)
    z0 = torch.randn(a.n, ctx.dirs.shape[1], generator=torch.Generator().manual_seed(7)).to(ctx.device)
    fid = lambda z: float(scorer.score(ev.render(ctx.g_ema, z)))  # noqa: E731
    out = {"device": str(ctx.device), "fid_gema": fid(z0)}
    t0 = time.perf_counter()
    out["fid_greedy"] = fid(ev.greedy_search(ctx, z0).z_t)
    print(f"G_ema {out['fid_gema']:.2f}  greedy {out['fid_greedy']:.2f}  ({time.perf_counter() - t0:.0f}s)", flush=True)
    test_z = states(ctx, 5000, gen)
    test_y = gains(ctx, test_z)
    for m in a.states:
        t0 = time.perf_counter()
        z = states(ctx, m, gen)
        y = gains(ctx, z)
        t_data = time.perf_counter() - t0
        net = fit(z, y, a.hidden, a.epochs, 0)
        with torch.no_grad():
            pred = net(test_z)
        r2 = 1 - ((pred - test_y) ** 2).mean() / ((test_y - test_y.mean(0)) ** 2).mean()
        pick = test_y.gather(1, pred.argmax(1, keepdim=True)).squeeze(1)
        row = {"states": m, "r2": float(r2), "gain_argmax": float(pick.mean()), "gain_random": float(test_y.mean()),
               "gain_best": float(test_y.max(1).values.mean()), "data_s": t_data,
               "fid_rollout": fid(rollout(ctx, net, z0)), "fit_s": time.perf_counter() - t0 - t_data}
        out[str(m)] = row
        print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
