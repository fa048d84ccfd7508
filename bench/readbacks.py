"""Host read-backs per step, this engine vs an older commit's, counted the same way:
`python bench/readbacks.py [--old 6250685] [--steps 300] [--preset cpu]`.

Both runs use this tree's dqngan/readbacks.py counter (copied into a temporary worktree of the old commit), the
preset's default logging, and start past learning_starts, so DQN updates are counted. Writes
bench/out/readbacks.json."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = """
import json, sys, torch
torch.set_num_threads(1)
from dqngan.config import make_config
from dqngan.readbacks import ReadbackCounter
from dqngan.trainer import Trainer
t = Trainer(make_config(sys.argv[1]), "cpu")
while len(t.replay) < max(t.cfg.learning_starts, t.cfg.q_batch) or t.step_count < 20:
    t.run(steps=10)
with ReadbackCounter() as c:
    t.run(steps=int(sys.argv[2]))
print(json.dumps({"per_step": c.total / int(sys.argv[2]), "kinds": dict(c.counts)}))
"""


def count(tree: Path, a: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tree)}
    p = subprocess.run([sys.executable, "-c", CODE, a.preset, str(a.steps)], cwd=tree, env=env, capture_output=True,
                       text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"counting failed in {tree}: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", default="6250685")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--preset", default="cpu")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), a.old], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            shutil.copy(ROOT / "dqngan" / "readbacks.py", old / "dqngan" / "readbacks.py")
            result = {"old": a.old, "preset": a.preset, "steps": a.steps, "old_engine": count(old, a),
                      "this_engine": count(ROOT, a)}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    (ROOT / "bench" / "out" / "readbacks.json").write_text(json.dumps(result, indent=2))
    print(f"host read-backs per step ({a.preset} preset, {a.steps} steps, default logging): old {a.old} "
          f"{result['old_engine']['per_step']:.2f} {result['old_engine']['kinds']}; this engine "
          f"{result['this_engine']['per_step']:.3f} {result['this_engine']['kinds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
