"""App polling benchmark: `python bench/app_poll.py [--preset cpu] [--seconds 15] [--viewers 5] [--json]`.

1. Poll handler: the Train tab's tick handler (/poll: status line + three keys) and the renders the browser then
   asks for when a key changed (/charts, /grid), called directly as Gradio's worker thread would, while a run trains
   in the background. "steady" = a viewer that polled a second ago (the normal case); "full" = a viewer opening the
   page (everything at once). Reports median / p90 milliseconds and the payload (what the browser receives: the
   Plotly JSON strings, update dicts and status text; the grid image is served as a file URL, counted as its URL
   plus the PNG it points to when it changed).
2. Training throughput with N simulated viewers vs none, alternating rounds. A viewer does what the page's JS does:
   POST /gradio_api/run/poll once a second (the tick is queue=False), then /charts, /grid or /locks when their key
   changed. Viewers run in a separate, niced process (real browsers are not on the server).

Targets (issue 4): median poll <= 30 ms, payload <= 150 KB, steps/s with 5 viewers >= 0.9x none.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def payload_bytes(out: tuple) -> int:
    import numpy as np
    from PIL import Image

    n = 0
    for o in out:
        if hasattr(o, "model_dump_json"):  # PlotData
            n += len(o.model_dump_json())
        elif isinstance(o, str) and o.endswith(".png") and Path(o).is_file():  # a file URL + the PNG it fetches
            n += 200 + Path(o).stat().st_size
        elif isinstance(o, np.ndarray):  # the grid: a file URL in the payload + the PNG the browser then fetches
            buf = io.BytesIO()
            Image.fromarray(o).save(buf, format="PNG")
            n += 200 + buf.tell()
        else:
            n += len(json.dumps(o, default=str))
    return n


def endpoint(demo, name: str):
    return next(f.fn for f in demo.fns.values() if f.api_name == name)


def bench_handler(preset: str, seconds: float) -> dict:
    """What one browser tick costs the server: /poll (status + keys), plus /charts and /grid when their key changed
    (the browser's .change events), timed as Gradio's worker thread would run them."""
    from dqngan.config import make_config
    from dqngan.ui import build_demo

    demo = build_demo(checkpoint=None, preset=preset, device="cpu")
    reg = demo.ctx.registry
    poll, charts, grid = endpoint(demo, "poll"), endpoint(demo, "charts"), endpoint(demo, "grid")
    req = SimpleNamespace(session_hash="bench-viewer")
    run = reg.own(req.session_hash, lambda: demo.ctx.fresh(make_config(preset)))
    reg.train(run)
    time.sleep(3)  # let some history and a grid accumulate
    tick_ms, tick_kb, poll_ms, new_ms, new_kb = [], [], [], [], []
    keys = ("", "", "")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0)  # the browser's tick interval
        t = time.perf_counter()
        out = poll(req)
        poll_ms.append((time.perf_counter() - t) * 1e3)
        sent = list(out)
        if out[1] != keys[0]:
            sent += list(charts(0.6, "whole run", req))
        if out[2] != keys[1]:
            sent += list(grid(True, req))
        tick_ms.append((time.perf_counter() - t) * 1e3)
        tick_kb.append(payload_bytes(tuple(sent)) / 1024)
        keys = out[1:4]
        # a viewer opening the page now: everything at once (mostly cache hits: the figures are shared per run)
        other = SimpleNamespace(session_hash=f"bench-new-{len(new_ms)}")
        t = time.perf_counter()
        full = [*poll(other), *charts(0.6, "whole run", other), *grid(True, other)]
        new_ms.append((time.perf_counter() - t) * 1e3)
        new_kb.append(payload_bytes(tuple(full)) / 1024)
    step = run.runner.step_count
    reg.close()
    return {"polls": len(tick_ms), "steps_trained": step,
            "poll_only_median_ms": statistics.median(poll_ms),
            "steady_median_ms": statistics.median(tick_ms), "steady_p90_ms": _p90(tick_ms),
            "steady_median_kb": statistics.median(tick_kb), "steady_max_kb": max(tick_kb),
            "full_median_ms": statistics.median(new_ms), "full_p90_ms": _p90(new_ms),
            "full_median_kb": statistics.median(new_kb), "full_max_kb": max(new_kb)}


def _p90(xs: list[float]) -> float:
    return sorted(xs)[int(0.9 * (len(xs) - 1))]


VIEWER = """
import sys, time, os, threading, uuid
os.nice(10)
import httpx
url, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def view():  # what a browser tab does: POST /run/poll each second (the tick is queue=False, so the page's JS calls
    # the endpoint directly), then the .change-triggered renders when a key moved
    sh = uuid.uuid4().hex[:11]
    with httpx.Client(base_url=url.rstrip("/") + "/gradio_api/run/", timeout=30) as c:
        call = lambda name, *data: c.post(name, json={"data": list(data), "session_hash": sh}).json()["data"]
        end = time.monotonic() + seconds
        keys = ("", "", "")
        while time.monotonic() < end:
            t = time.monotonic()
            _, ck, gk, lk, _ = call("poll")
            if ck != keys[0]:
                call("charts", 0.6, "whole run")
            if gk != keys[1]:
                call("grid", True)
            if lk != keys[2]:
                call("locks", lk)
            keys = (ck, gk, lk)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
ts = [threading.Thread(target=view) for _ in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
"""


def bench_viewers(preset: str, seconds: float, rounds: int, viewers: int) -> dict:
    from dqngan.config import make_config
    from dqngan.ui import build_demo, launch_kwargs

    demo = build_demo(checkpoint=None, preset=preset, device="cpu")
    demo.queue(max_size=64, default_concurrency_limit=2)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_kwargs())
    reg = demo.ctx.registry
    run = reg.own("bench-owner", lambda: demo.ctx.fresh(make_config(preset)))
    reg.train(run)
    time.sleep(3)
    rates: dict[str, list[float]] = {"none": [], f"{viewers} viewers": []}
    try:
        for _ in range(rounds):
            for name in rates:
                proc = None
                if name != "none":
                    proc = subprocess.Popen([sys.executable, "-c", VIEWER, url, str(viewers), str(seconds + 6)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(5)  # clients connected and polling before we start counting
                s0, t0 = run.runner.step_count, time.perf_counter()
                time.sleep(seconds)
                rates[name].append((run.runner.step_count - s0) / (time.perf_counter() - t0))
                if proc is not None:
                    proc.wait(timeout=60)
    finally:
        reg.close()
        demo.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    with_v = med[f"{viewers} viewers"]
    return {"steps_per_s": med, "rounds": {k: [round(x, 2) for x in v] for k, v in rates.items()},
            "ratio": with_v / med["none"] if med["none"] else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seconds", type=float, default=15.0, help="seconds per measurement (handler bench and rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating none / viewers rounds")
    ap.add_argument("--viewers", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    h = bench_handler(a.preset, a.seconds)
    v = bench_viewers(a.preset, a.seconds, a.rounds, a.viewers)
    if a.json:
        print(json.dumps({"handler": h, "viewers": v, "preset": a.preset, "cpus": os.cpu_count()}))
        return
    print(f"preset {a.preset}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(f"poll handler (tick alone)   : median {h['poll_only_median_ms']:.2f} ms")
    print(f"poll handler, steady viewer : median {h['steady_median_ms']:.2f} ms (p90 {h['steady_p90_ms']:.2f}), "
          f"payload median {h['steady_median_kb']:.1f} KB (max {h['steady_max_kb']:.1f} KB)  [{h['polls']} polls]")
    print(f"poll handler, new viewer    : median {h['full_median_ms']:.2f} ms (p90 {h['full_p90_ms']:.2f}), "
          f"payload median {h['full_median_kb']:.1f} KB (max {h['full_max_kb']:.1f} KB)")
    sp = v["steps_per_s"]
    print("training steps/s            : " + " | ".join(f"{k}: {x:.2f}" for k, x in sp.items())
          + f"  -> ratio {v['ratio']:.3f}  (rounds {v['rounds']})")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
