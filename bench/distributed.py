"""Scale-out on the CPU: training images/s of N processes (torchrun, gloo) vs 1, side by side.

`python bench/distributed.py [--procs 2] [--seconds 40] [--rounds 3] [--preset cpu]`: each round trains once with
one process and once with `torchrun --nproc-per-node=N` (one torch thread per process, alternating which goes first),
each for the same wall time, and counts GAN images per second = steps/s x batch x processes (every rank trains on
its own batch; the models are shared). The paired per-round ratios count; their median is the figure.
Writes bench/out/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train(procs: int, a: argparse.Namespace, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cli = ["-m", "dqngan", "train", "--device", "cpu", "--preset", a.preset, "--seconds", str(a.seconds), "--out",
           str(out), "--json", "--no-progress", "--save-every", "100000", "--set", "fid_every=0", "grid_every=100000"]
    cmd = [sys.executable, *cli] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                      f"--nproc-per-node={procs}", *cli]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=a.seconds * 10 + 300)
    if p.returncode != 0:
        raise SystemExit(f"{procs}-process run failed: {p.stderr.strip().splitlines()[-1:]}")
    s = json.loads(p.stdout.strip().splitlines()[-1])
    cfg = json.loads((out / "config.json").read_text())
    s["images_per_s"] = s["steps_per_s"] * cfg["batch_size"] * s["world_size"]
    return s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "distributed.json"))
    a = p.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            order = (1, a.procs) if i % 2 == 0 else (a.procs, 1)
            r = {n: train(n, a, Path(tmp) / f"r{i}-{n}") for n in order}
            ratio = r[a.procs]["images_per_s"] / r[1]["images_per_s"]
            rounds.append({"one": r[1], "many": r[a.procs], "ratio": ratio})
            print(f"round {i + 1}: 1 process {r[1]['images_per_s']:.0f} images/s ({r[1]['steps_per_s']} steps/s), "
                  f"{a.procs} processes {r[a.procs]['images_per_s']:.0f} images/s ({r[a.procs]['steps_per_s']} "
                  f"steps/s each): {ratio:.2f}x", flush=True)
    summary = {"procs": a.procs, "cpus": os.cpu_count(), "preset": a.preset, "seconds": a.seconds,
               "rounds": rounds, "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3)}
    Path(a.out).write_text(json.dumps(summary, indent=2))
    print(f"median {a.procs} vs 1 process: {summary['median_ratio']}x images/s (target >= 1.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
