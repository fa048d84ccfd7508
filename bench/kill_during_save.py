"""kill -9 the CLI trainer at random moments (many of them during checkpoint writes), then check that the checkpoint
directory still resolves, loads and resumes.

    OMP_NUM_THREADS=1 python bench/kill_during_save.py            # 20 kills -> bench/out/kill_during_save.json
    OMP_NUM_THREADS=1 python bench/kill_during_save.py --kills 3  # quick

Each trial trains `--preset tiny --save-every 0.2` into a fresh directory and waits for the first complete checkpoint.
Then it kills the process with SIGKILL in one of three ways, in turn:
  * "random":  after a random delay of 0-1.5 s (saves take a good part of every 0.2 s, so many kills land in one);
  * "tmp":     as soon as DIR.tmp appears (a save has just started writing), plus 0-40 ms;
  * "swap":    as soon as DIR.old appears (the moment between moving DIR aside and moving DIR.tmp in).
After the kill: `dqngan.checkpoint.resolve(DIR)` must find a complete checkpoint, `load_checkpoint` must load it, and
`python -m dqngan train --resume DIR --out DIR --steps 2` must exit 0 and advance the step counter by exactly 2.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
MODES = ("random", "tmp", "swap")


def _cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "dqngan", *map(str, args)]


def _wait(pred, timeout: float, every: float = 0.002) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return False


def spawn_and_kill(out: Path, mode: str, rng: random.Random, seed: int = 0, resume: bool = False) -> dict:
    """Start a trainer writing `out` every 0.2 s (resuming `out` if asked), wait for a complete checkpoint written by
    this process, kill -9 it the way `mode` says. Returns what was seen (an "error" key if it never got there)."""
    tmp, old = out.with_name(out.name + ".tmp"), out.with_name(out.name + ".old")
    rec: dict = {"mode": mode}
    args = ["train", "--out", out, "--seconds", 120, "--save-every", 0.2, "--no-progress"]
    args += ["--resume", out] if resume else ["--preset", "tiny", "--seed", seed, "--set", "fid_every=0",
                                              "grid_every=5"]
    mark = (out / "manifest.json").stat().st_mtime_ns if (out / "manifest.json").is_file() else 0
    p = subprocess.Popen(_cmd(*args), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def saved_by_this_process() -> bool:
        try:
            return (out / "manifest.json").stat().st_mtime_ns > mark
        except OSError:
            return False

    try:
        if not _wait(lambda: saved_by_this_process() or p.poll() is not None, 120):
            rec["error"] = "no checkpoint within 120 s"
            return rec
        if p.poll() is not None:
            rec["error"] = f"trainer exited early with {p.returncode}"
            return rec
        if mode == "random":
            time.sleep(rng.uniform(0.0, 1.5))
        elif mode == "tmp":
            _wait(lambda: tmp.exists(), 10)
            time.sleep(rng.uniform(0.0, 0.04))
        else:
            rec["saw_swap"] = _wait(lambda: old.exists(), 10, every=0.0005)
        rec["state_at_kill"] = {"dir": out.exists(), "tmp": tmp.exists(), "old": old.exists()}
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    rec["state_after"] = {"dir": out.exists(), "tmp": tmp.exists(), "old": old.exists()}
    rec["in_save"] = rec["state_after"]["tmp"] or rec["state_after"]["old"]
    return rec


def check_loads(out: Path, rec: dict) -> bool:
    """After a kill: the directory resolves to a complete checkpoint that loads. Fills rec; True if it does."""
    from dqngan.checkpoint import load_checkpoint, resolve

    try:
        found = resolve(out)
        rec["resolved"] = found.name
        t = load_checkpoint(out, device="cpu")
        rec["step"] = t.step_count
    except Exception as e:  # a failed recovery is the measurement, not a crash of the bench
        rec["error"] = f"load: {type(e).__name__}: {e}"
        return False
    return True


def check_resumes(out: Path, rec: dict) -> bool:
    """`train --resume DIR --out DIR --steps 2` exits 0 and lands exactly 2 steps further."""
    from dqngan.checkpoint import resolve

    step = rec["step"]
    r = subprocess.run(_cmd("train", "--resume", out, "--out", out, "--steps", 2, "--no-progress", "--json"),
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        rec["error"] = f"resume exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"
        return False
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    rec["resumed_to"] = summary["step"]
    if summary["step"] != step + 2 or resolve(out) != out:
        rec["error"] = f"resumed to step {summary['step']}, expected {step + 2}"
        return False
    return True


def trial(work: Path, i: int, mode: str, rng: random.Random) -> dict:
    """One kill of a fresh run + the recovery checks. Returns a JSON-able record."""
    out = work / f"run{i:02d}"
    rec = {"trial": i, **spawn_and_kill(out, mode, rng, seed=i)}
    if "error" not in rec and check_loads(out, rec) and check_resumes(out, rec):
        rec["ok"] = True
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "kill_during_save.json")
    a = ap.parse_args(argv)
    import shutil
    import tempfile

    work = a.work or Path(tempfile.mkdtemp(prefix="dqngan-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    t0 = time.monotonic()
    records = []
    try:
        for i in range(a.kills):
            rec = trial(work, i, MODES[i % len(MODES)], rng)
            records.append(rec)
            print(f"kill {i + 1:2d}/{a.kills} [{rec['mode']:6s}] in_save={rec.get('in_save')} "
                  f"resolved={rec.get('resolved')} step={rec.get('step')} -> "
                  f"{'ok' if rec.get('ok') else 'FAILED: ' + rec.get('error', '?')}", flush=True)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = sum(1 for r in records if r.get("ok"))
    result = {"kills": len(records), "recovered": ok, "killed_during_save": sum(1 for r in records if r.get("in_save")),
              "resolved_to_fallback": sum(1 for r in records if r.get("resolved", "").endswith((".tmp", ".old"))),
              "seconds": round(time.monotonic() - t0, 1), "records": records}
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2))
    print(f"{ok}/{len(records)} recovered ({result['killed_during_save']} kills landed during a save, "
          f"{result['resolved_to_fallback']} recovered from DIR.tmp/DIR.old)")
    return 0 if ok == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
