"""Click-to-screen latency while a run trains: `python bench/click_latency.py [--old REV] [--cycles 8]`.

Starts the app (`python app.py`, the shipped checkpoint, 2 cores shared with the browser) and drives headless Debian
chromium like a teacher: Train, then cycles of (train a few seconds, Pause, Train). Each latency is the time from the
click to the status line showing the new state *in the browser* (the server answers in ~0.2 s; the rest is the page's
main thread, busy redrawing charts). Also counts the page's long tasks (main thread blocked > 50 ms).

`--old REV` runs the same measurement on a git worktree of REV first, side by side in one run (machines are noisy).
Writes bench/out/click_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LONG_TASKS = """() => { window.__lt = []; new PerformanceObserver(l => { for (const e of l.getEntries())
  window.__lt.push(e.duration); }).observe({type: 'longtask'}); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tree: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the app in {tree} did not start")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def measure(url: str, cycles: int, train_s: float) -> dict:
    from playwright.sync_api import sync_playwright
    from tqdm import tqdm

    lat: dict[str, list[float]] = {"pause": [], "train": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        pg = b.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(120_000)
        pg.goto(url)
        pg.wait_for_selector("#train-btn")
        pg.wait_for_function("() => document.querySelector('#status').innerText.includes('step')")
        time.sleep(3)
        pg.click("#train-btn")
        pg.wait_for_function("() => document.querySelector('#status').innerText.includes('running')")
        time.sleep(10)  # the first charts and grids of the run
        pg.evaluate(LONG_TASKS)
        t_obs = time.monotonic()
        for _ in tqdm(range(cycles), desc=url.split("//")[1][:22], unit="cycle"):
            time.sleep(train_s)
            for what, btn, word in (("pause", "#pause-btn", "paused"), ("train", "#train-btn", "running")):
                t0 = time.monotonic()
                pg.click(btn)
                pg.wait_for_function(f"() => document.querySelector('#status').innerText.includes('{word}')",
                                     polling=20)
                lat[what].append(time.monotonic() - t0)
                time.sleep(1.0)
        long_tasks = pg.evaluate("() => window.__lt")
        observed = time.monotonic() - t_obs
        b.close()
    out = {k: {"n": len(v), "p50_s": round(statistics.median(v), 2), "p95_s": round(pct(v, 0.95), 2),
               "max_s": round(max(v), 2), "all_s": [round(x, 2) for x in v]} for k, v in lat.items()}
    out["long_tasks"] = {"n": len(long_tasks), "blocked_fraction": round(sum(long_tasks) / 1000 / observed, 3),
                         "max_ms": round(max(long_tasks or [0.0]))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="a git revision to measure first, side by side (e.g. 1f2e30f)")
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--train-seconds", type=float, default=8.0, help="training between two Pause clicks")
    a = ap.parse_args()
    trees = [("current", ROOT)]
    tmp = None
    if a.old:
        tmp = Path(tempfile.mkdtemp(prefix="dqngan-old-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "tree"), a.old], cwd=ROOT, check=True,
                       capture_output=True)
        trees.insert(0, (a.old, tmp / "tree"))
    results = {}
    try:
        for name, tree in trees:
            port = free_port()
            proc = serve(tree, port)
            try:
                results[name] = measure(f"http://127.0.0.1:{port}/", a.cycles, a.train_seconds)
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "tree")], cwd=ROOT)
            shutil.rmtree(tmp, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "click_latency.json").write_text(json.dumps({"cycles": a.cycles, "results": results}, indent=2))
    for name, r in results.items():
        lt = r["long_tasks"]
        print(f"{name}: pause p50 {r['pause']['p50_s']} s p95 {r['pause']['p95_s']} s max {r['pause']['max_s']} s; "
              f"train p50 {r['train']['p50_s']} s p95 {r['train']['p95_s']} s; main thread blocked "
              f"{lt['blocked_fraction']:.0%} (longest {lt['max_ms']} ms)")


if __name__ == "__main__":
    main()
