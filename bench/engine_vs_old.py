"""This engine vs an older commit's, side by side: `python bench/engine_vs_old.py --old REV [--rounds 4]`.

Each round runs `python -m dqngan bench --json` once in a checkout of REV (a temporary git worktree) and once in
this tree, alternating which goes first, with the same torch thread count. Machines are noisy, so the figures that
count are the per-round ratios new/old (paired) and their median; the absolute steps/s are only context.
Writes bench/out/engine_vs_old.json.
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


def bench(tree: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(tree)}
    code = (f"import torch, sys; torch.set_num_threads({args.threads}); from dqngan.cli import main; "
            f"sys.exit(main(['bench', '--json', '--device', 'cpu', '--preset', {args.preset!r}, "
            f"'--seconds', '{args.seconds}', '--rounds', '{args.inner_rounds}']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"bench failed in {tree}: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="git revision of the engine to compare against")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--inner-rounds", type=int, default=2, help="alternating GAN/joint rounds inside each bench")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "engine_vs_old.json"))
    args = p.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", args.old], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    new_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            rounds = []
            for i in range(args.rounds):
                order = [("old", old_tree), ("new", ROOT)] if i % 2 == 0 else [("new", ROOT), ("old", old_tree)]
                r = {name: bench(tree, args) for name, tree in order}
                r["ratio_joint"] = r["new"]["joint_steps_per_s"] / r["old"]["joint_steps_per_s"]
                r["ratio_gan"] = r["new"]["gan_steps_per_s"] / r["old"]["gan_steps_per_s"]
                rounds.append(r)
                print(f"round {i + 1}: joint old {r['old']['joint_steps_per_s']:.2f} new "
                      f"{r['new']['joint_steps_per_s']:.2f} ({r['ratio_joint']:.3f}x); GAN-only old "
                      f"{r['old']['gan_steps_per_s']:.2f} new {r['new']['gan_steps_per_s']:.2f} "
                      f"({r['ratio_gan']:.3f}x)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, capture_output=True)
    summary = {
        "old": rev, "new": new_rev + ("+dirty" if subprocess.run(["git", "diff", "--quiet", "HEAD"],
                                                                  cwd=ROOT).returncode else ""),
        "preset": args.preset, "threads": args.threads, "rounds": rounds,
        "median_ratio_joint": round(statistics.median(r["ratio_joint"] for r in rounds), 3),
        "median_ratio_gan": round(statistics.median(r["ratio_gan"] for r in rounds), 3),
        "new_readbacks_per_step": rounds[-1]["new"].get("readbacks_per_step"),
    }
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(f"median new/old: joint {summary['median_ratio_joint']}x, GAN-only {summary['median_ratio_gan']}x "
          f"(target >= 0.95); new engine host read-backs per step: {summary['new_readbacks_per_step']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
