"""Scale-out on the CPU: training images/s of N processes (torchrun, gloo) vs 1, side by side.

`python bench/distributed.py [--procs 2] [--seconds 40] [--rounds 3] [--preset cpu]`: each round trains once with
one process and once with `torchrun --nproc-per-node=N` (one torch thread per process, alternating which goes first),
each for the same wall time, and counts GAN images per second = steps/s x batch x processes (every rank trains on
its own batch; the models are shared). The paired per-round ratios count; their median is the figure.

A control arm runs N independent one-process trainings at the same time (no communication at all): its images/s
over one process's is what N processes can reach on this machine at best (shared caches, memory bandwidth, a VM's
vCPUs), so `many / independent` is the share of that ceiling the distributed run keeps, i.e. the cost of the
collectives themselves. Writes bench/out/distributed.json.
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


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _cli(a: argparse.Namespace, out: Path) -> list[str]:
    return ["-m", "dqngan", "train", "--device", "cpu", "--preset", a.preset, "--seconds", str(a.seconds), "--out",
            str(out), "--json", "--no-progress", "--save-every", "100000", "--set", "fid_every=0",
            "grid_every=100000"]


def _result(p: subprocess.CompletedProcess, out: Path, what: str) -> dict:
    if p.returncode != 0:
        raise SystemExit(f"{what} run failed: {p.stderr.strip().splitlines()[-1:]}")
    s = json.loads(p.stdout.strip().splitlines()[-1])
    cfg = json.loads((out / "config.json").read_text())
    s["images_per_s"] = s["steps_per_s"] * cfg["batch_size"] * s["world_size"]
    return s


def train(procs: int, a: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, *_cli(a, out)] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}", *_cli(a, out)]
    p = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=a.seconds * 10 + 300)
    return _result(p, out, f"{procs}-process")


def independent(procs: int, a: argparse.Namespace, out: Path) -> dict:
    """`procs` separate one-process trainings side by side: the machine's ceiling for `procs` processes."""
    outs = [out / f"p{i}" for i in range(procs)]
    ps = [subprocess.Popen([sys.executable, *_cli(a, o)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for o in outs]
    results = []
    for p, o in zip(ps, outs):
        stdout, stderr = p.communicate(timeout=a.seconds * 10 + 300)
        results.append(_result(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr), o, "independent"))
    return {"images_per_s": sum(r["images_per_s"] for r in results),
            "steps_per_s": [r["steps_per_s"] for r in results]}


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
            arms = ["one", "many", "independent"]
            arms = arms[i % 3:] + arms[:i % 3]  # rotate which arm goes first
            r = {}
            for arm in arms:
                d = Path(tmp) / f"r{i}-{arm}"
                r[arm] = (train(1, a, d) if arm == "one" else train(a.procs, a, d) if arm == "many"
                          else independent(a.procs, a, d))
            ratio = r["many"]["images_per_s"] / r["one"]["images_per_s"]
            ceiling = r["independent"]["images_per_s"] / r["one"]["images_per_s"]
            rounds.append({**r, "ratio": ratio, "ceiling": ceiling, "kept": ratio / ceiling})
            print(f"round {i + 1}: 1 process {r['one']['images_per_s']:.0f} images/s "
                  f"({r['one']['steps_per_s']} steps/s), {a.procs} processes {r['many']['images_per_s']:.0f} images/s "
                  f"({r['many']['steps_per_s']} steps/s each): {ratio:.2f}x; {a.procs} independent processes "
                  f"{ceiling:.2f}x (the machine's ceiling), so the collectives keep {ratio / ceiling:.0%}", flush=True)
    med = {k: round(statistics.median(r[k] for r in rounds), 3) for k in ("ratio", "ceiling", "kept")}
    summary = {"procs": a.procs, "cpus": os.cpu_count(), "preset": a.preset, "seconds": a.seconds,
               "rounds": rounds, "median_ratio": med["ratio"], "median_ceiling": med["ceiling"],
               "median_kept": med["kept"]}
    Path(a.out).write_text(json.dumps(summary, indent=2))
    print(f"median {a.procs} vs 1 process: {med['ratio']}x images/s (target >= 1.6); {a.procs} independent "
          f"processes: {med['ceiling']}x; the distributed run keeps {med['kept']:.0%} of that ceiling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
