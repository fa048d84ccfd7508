"""Side-by-side throughput: GAN-only vs joint (GAN + DQN) steps/s, env transitions/s and host read-backs per step,
in one process.

Rounds alternate between the variants, so machine noise hits both alike; only the ratio is meant to be compared. On
a GPU the clock is read only after `torch.cuda.synchronize()`: a step that never waits for the device would
otherwise be timed by how fast Python can queue it."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import torch

from .config import make_config
from .data import load_dataset
from .device import pick_device
from .trainer import Trainer


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(trainer: Trainer, seconds: float) -> tuple[int, float]:
    _sync(trainer.device)
    s0, t0 = trainer.step_count, time.perf_counter()
    trainer.run(seconds=seconds)
    _sync(trainer.device)
    return trainer.step_count - s0, time.perf_counter() - t0


def readbacks_per_step(trainer: Trainer, steps: int = 300) -> tuple[float, dict[str, int]]:
    """Host read-backs per step (see dqngan.readbacks) over `steps` steps with the run's own logging intervals."""
    from .readbacks import ReadbackCounter

    with ReadbackCounter() as c:
        trainer.run(steps=steps)
    return c.total / steps, dict(c.counts)


def run_benchmark(preset: str = "cpu", seconds: float = 8.0, rounds: int = 3, device: str = "auto") -> dict[str, Any]:
    dev = pick_device(device)
    quiet = {"fid_every": 0, "grid_every": 10**6}
    cfg = make_config(preset, quiet)
    data = load_dataset(cfg.dataset)
    variants = {"gan": Trainer(cfg.replace(agent_every=0), device=dev, data=data),
                "joint": Trainer(cfg, device=dev, data=data)}
    if dev.type == "cuda":  # graphed (the default on CUDA) vs eager, side by side
        variants["joint_eager"] = Trainer(cfg.replace(cuda_graphs=False), device=dev, data=data)
    # Warm up (graph captures included): a joint run must be past learning_starts, or its DQN updates would not
    # be measured.
    need = max(cfg.learning_starts, cfg.q_batch)
    for tr in variants.values():
        while len(tr.replay) < need and tr.cfg.agent_every or tr.step_count < 40:
            tr.run(steps=10)
    totals = {name: [0, 0.0] for name in variants}
    for _ in range(rounds):
        for name, tr in variants.items():
            n, dt = _timed(tr, seconds)
            totals[name][0] += n
            totals[name][1] += dt
    rates = {name: n / dt for name, (n, dt) in totals.items()}
    gan_rate, joint_rate = rates["gan"], rates["joint"]
    joint = variants["joint"]
    graphs = joint.graphs

    env, agent = joint.env, joint.agent
    _sync(dev)
    n_steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.step(agent.act(env.obs(), 0.1, joint.gen))
        n_steps += 1
    _sync(dev)
    env_rate = n_steps * env.n / (time.perf_counter() - t0)
    # read-backs with the preset's default logging (grids and FID included), not the quiet timing config
    counted = Trainer(make_config(preset), device=dev, data=data)
    counted.run(steps=20)
    per_step, kinds = readbacks_per_step(counted)
    return {
        "device": str(dev), "preset": preset, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "rounds": rounds, "seconds_per_round": seconds,
        "gan_steps_per_s": round(gan_rate, 2), "joint_steps_per_s": round(joint_rate, 2),
        "joint_over_gan": round(joint_rate / gan_rate, 3), "agent_every": cfg.agent_every,
        "env_transitions_per_s": round(env_rate, 1), "n_envs": env.n,
        "readbacks_per_step": round(per_step, 3), "readback_kinds": kinds,
        "cuda_graphs": None if graphs is None else {
            "failed": graphs.failed, "replays": graphs.replays, "captured": len(graphs.graphs),
            "eager_joint_steps_per_s": round(rates["joint_eager"], 2),
            "graphed_over_eager": round(joint_rate / rates["joint_eager"], 3)},
    }


def format_report(r: dict[str, Any]) -> str:
    verdict = "meets" if r["joint_over_gan"] >= 0.9 else "misses"
    return (f"device {r['device']} ({r['cpus']} CPUs, {r['torch_threads']} torch threads), preset {r['preset']}, "
            f"{r['rounds']} alternating rounds x {r['seconds_per_round']} s\n"
            f"  GAN-only       {r['gan_steps_per_s']:8.2f} steps/s\n"
            f"  joint GAN+DQN  {r['joint_steps_per_s']:8.2f} steps/s   ratio {r['joint_over_gan']:.3f} "
            f"({verdict} the 0.9 target; agent step every {r['agent_every']} GAN steps)\n"
            + (f"  joint, eager   {r['cuda_graphs']['eager_joint_steps_per_s']:8.2f} steps/s   graphed/eager "
               f"{r['cuda_graphs']['graphed_over_eager']:.3f} (target 5; capture: "
               f"{r['cuda_graphs']['failed'] or 'ok'}, {r['cuda_graphs']['replays']} replays)\n"
               if r.get("cuda_graphs") else "") +
            f"  env            {r['env_transitions_per_s']:8.1f} transitions/s ({r['n_envs']} envs per step)\n"
            f"  host read-backs {r['readbacks_per_step']:7.3f} per step over 300 steps with the preset's logging "
            f"({', '.join(f'{k} {v}' for k, v in sorted(r['readback_kinds'].items())) or 'none'})")
