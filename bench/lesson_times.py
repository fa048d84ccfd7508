"""What a class sees, and when: `python bench/lesson_times.py [--seconds 180] [--threads 1]`.

Runs each trainable lesson's start run exactly as the app builds it (`AppContext.lesson_run`, one torch thread like
the app on a CPU Space) and records, at fixed wall-clock times, the step, the sample grid from the fixed noise and
the lesson's signal: FID for lesson 1 (a fresh GAN), the spread of Q across actions at the probe states and the
episode return for lesson 2 (a fresh agent on the trained GAN). No browser shares the cores here, so these are the
best case for a 2-core machine; the README quotes the browser walk alongside.

Writes bench/out/lesson_times.json and bench/out/lesson_times.png (each lesson's grid at each time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
MARKS = (10, 20, 30, 60, 120, 180, 300)


def q_spread(runner) -> float | None:
    """Best minus worst action's mean Q at the probe states (an untrained network's outputs spread too)."""
    if not runner.agent_steps:
        return None
    with runner.model_access() as t:
        return float(np.ptp(np.asarray(t.probe_q())))


def q_reward_corr(trainer) -> float | None:
    """How well Q ranks the moves: at each probe state, the correlation across actions between Q(s, a) and the move's
    true one-step reward Phi(z') - Phi(z) (what Q estimates when gamma = 0, as in the shipped agent's config; with
    gamma > 0 it is still the first term of the return), averaged over the probe states. ~0 for an untrained agent."""
    if not trainer.agent_steps:
        return None
    from dqngan.directions import action_moves

    z = trainer.fixed_z.cpu()
    n, k1 = z.shape[0], 2 * trainer.cfg.n_dirs + 1
    actions = torch.arange(k1).repeat(n)
    z_next = z.repeat_interleave(k1, 0) + action_moves(actions, trainer.directions(), trainer.cfg.delta)
    phi, phi_next = trainer.score(z).numpy(), trainer.score(z_next).numpy().reshape(n, k1)
    reward = phi_next - phi[:, None]
    reward[:, 0] = 0.0  # stop
    q = trainer.q_values(z).numpy()
    corr = [np.corrcoef(q[i], reward[i])[0, 1] for i in range(n)]
    return float(np.nanmean(corr))


def measure(name: str, lesson: dict, seconds: float, ctx) -> dict:
    from tqdm import tqdm

    run = ctx.lesson_run(lesson)
    t = run.runner
    marks = [m for m in MARKS if m <= seconds]
    rows, grids = [], []
    t0 = time.monotonic()
    with tqdm(total=len(marks), desc=name[:28], unit="mark") as bar:
        for m in marks:
            t.run(seconds=max(0.0, t0 + m - time.monotonic()))
            wall = time.monotonic() - t0
            with torch.no_grad():
                grid = t.generate(t.fixed_z).numpy()
            row = {"seconds": round(wall, 1), "step": t.step_count, "agent_steps": t.agent_steps,
                   "fid": t.history.last("fid"), "q_spread": q_spread(t), "q_reward_corr": q_reward_corr(t),
                   "episode_return": t.history.last("episode_return")}
            rows.append(row)
            grids.append((m, grid))
            bar.set_postfix(step=t.step_count)
            bar.update()
    t.stop(timeout=5)
    return {"lesson": name, "rows": rows, "grids": grids}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dqngan.plots import grid_image

    cols = max(len(r["grids"]) for r in results)
    fig, axes = plt.subplots(len(results), cols, figsize=(2.2 * cols, 2.6 * len(results)), squeeze=False)
    for i, r in enumerate(results):
        for j in range(cols):
            ax = axes[i][j]
            ax.axis("off")
            if j >= len(r["grids"]):
                continue
            m, g = r["grids"][j]
            row = r["rows"][j]
            ax.imshow(grid_image(g[:16]), cmap="gray", vmin=0, vmax=255)
            sig = (f"FID {row['fid']:.0f}" if row["fid"] is not None else "") if i == 0 else \
                (f"corr(Q, reward) {row['q_reward_corr']:.2f}" if row["q_reward_corr"] is not None else "no Q yet")
            ax.set_title(f"{m} s · step {row['step']:,}\n{sig}", fontsize=8)
        axes[i][0].text(-0.1, 0.5, r["lesson"].split(".")[0].join(["lesson ", ""]), transform=axes[i][0].transAxes,
                        rotation=90, va="center", ha="right", fontsize=9)
    fig.suptitle("What each lesson shows after N seconds (2-core CPU, 1 torch thread, no browser)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="wall-clock seconds per lesson")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app uses 1 on a CPU)")
    ap.add_argument("--lessons", default="1,2", help="which lessons (lesson 3 trains nothing)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from dqngan.ui.context import AppContext
    from dqngan.ui.lessons import LESSONS

    ctx = AppContext(device="cpu")
    want = set(a.lessons.split(","))
    results = [measure(name, lesson, a.seconds, ctx) for name, lesson in LESSONS.items()
               if lesson["start"] != "checkpoint" and name.split(".")[0] in want]
    OUT.mkdir(parents=True, exist_ok=True)
    plot(results, OUT / "lesson_times.png")
    summary = {"seconds": a.seconds, "threads": a.threads, "torch": torch.__version__,
               "lessons": [{"lesson": r["lesson"], "rows": r["rows"]} for r in results]}
    (OUT / "lesson_times.json").write_text(json.dumps(summary, indent=2))
    for r in results:
        print(r["lesson"])
        for row in r["rows"]:
            print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    print(f"wrote {OUT / 'lesson_times.png'} and lesson_times.json")


if __name__ == "__main__":
    main()
