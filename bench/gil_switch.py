"""Training speed beside busy request handlers, by GIL switch interval: `python bench/gil_switch.py`.

The app trains in a thread of the process that serves every viewer. torch releases the GIL inside each op; when the
op returns while a request handler runs Python, the training thread waits for the GIL, up to the interpreter's
switch interval (CPython's default 5 ms). This measures the CPU preset's steps/s in one process, alone and beside a
thread that runs pure Python for --busy-ms out of every --period-ms (about what 30 polling viewers cost the server),
for several switch intervals, in alternating rounds (machines are noisy: the per-round ratios to "alone" count).
Measured on 2 cores: 0.68x alone with 5 ms, 0.72x with 0.5 ms, so the interval is a small part of the loss; the
rest is the handlers' own GIL time (a training step of these small models is mostly Python). Writes
bench/out/gil_switch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from dqngan.config import make_config  # noqa: E402
from dqngan.data import load_dataset  # noqa: E402
from dqngan.trainer import Trainer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intervals", default="0.005,0.001,0.0005", help="switch intervals to compare, seconds")
    ap.add_argument("--busy-ms", type=float, default=3.0)
    ap.add_argument("--period-ms", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=8.0, help="per arm and round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gil_switch.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = make_config("cpu", {"fid_every": 0, "grid_every": 100_000})
    tr = Trainer(cfg, device=torch.device("cpu"), data=load_dataset(cfg.dataset))
    tr.run(steps=100)  # past the first steps' one-off costs

    stop, busy = threading.Event(), threading.Event()

    def handler() -> None:  # a request handler's pure Python, then idle until the next request
        while not stop.is_set():
            if not busy.is_set():
                time.sleep(0.01)
                continue
            t = time.perf_counter()
            while time.perf_counter() - t < a.busy_ms / 1e3:
                sum(range(100))
            time.sleep((a.period_ms - a.busy_ms) / 1e3)

    threading.Thread(target=handler, daemon=True).start()

    def speed() -> float:
        s0, t0 = tr.step_count, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds:
            tr.advance(10)
        return (tr.step_count - s0) / (time.perf_counter() - t0)

    default = sys.getswitchinterval()
    arms = [("alone", None)] + [(f"busy, {float(x) * 1e3:g} ms", float(x)) for x in a.intervals.split(",")]
    rounds = []
    for i in range(a.rounds):
        order = arms if i % 2 == 0 else arms[::-1]
        r = {}
        for name, interval in order:
            sys.setswitchinterval(interval or default)
            (busy.set if interval else busy.clear)()
            r[name] = speed()
        rounds.append(r)
        print(f"round {i + 1}: " + ", ".join(f"{k} {v:.1f} steps/s" for k, v in r.items()), flush=True)
    stop.set()
    sys.setswitchinterval(default)
    ratios = {name: round(statistics.median(r[name] / r["alone"] for r in rounds), 3) for name, _ in arms[1:]}
    res = {"busy_ms": a.busy_ms, "period_ms": a.period_ms, "seconds": a.seconds, "rounds": rounds,
           "median_ratio_to_alone": ratios, "loadavg_end": os.getloadavg()}
    Path(a.out).write_text(json.dumps(res, indent=2))
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x the steps/s alone (median of {a.rounds} paired rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
