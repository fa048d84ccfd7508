"""Load and memory test (issue 6, item 3): `python bench/load_test.py [--load-minutes 10] [--total-minutes 30]`.

The real app (composed as app.py does: shipped checkpoint as the shared base model, queue(max_size=64,
default_concurrency_limit=2), the launch settings) serves on a free local port in this process. A simulated browser
(the "owner", a gradio_client session in a separate niced process) picks the CPU preset and presses Train through
the API, exactly as the page does, and keeps its tab open for the whole test (its session polls once a minute, like
a hidden tab coming back; a hidden tab does not tick).

Phases, measured side by side because the machine is shared and noisy:
  warmup (training alone, default 240 s: the replay buffer and the grid timeline fill up)
  alone 60 s | load 120 s | alone 60 s | load 120 s | ... | alone 60 s   (load phases total --load-minutes)
  tail: training alone until --total-minutes after Train was pressed (memory flatness)
Each load phase starts 10 new viewers, each its own gradio_client.Client (its own session, config fetch and
heartbeat, like a page load), in separate niced processes (real browsers are not on the server). A viewer fires the
page-load events (queued, as the page does), presses Watch (follows the training run read-only, so its charts and
grid change every second: the heavier case), then does what the page's timer does: every second POST
/gradio_api/run/poll (the tick is queue=False, so the page's JS posts it directly; gradio_client would route it
through the queue: --transport client does that instead), then /charts, /grid (plus the PNG it points to) and /locks
when their key changed. Every call's latency is recorded. At the end of a phase the viewers close (heartbeat lost ->
unload), the way tabs close.

Measured: poll latency p50/p95/max over all load phases (and per phase); training steps/s per phase, ratio with
viewers vs alone (medians and totals); the server process RSS every --rss-every seconds (start/end of the load
section, at 5 min, end and max of the whole run), plus the sizes that must stay bounded (history, grids, replay,
sessions). Writes bench/out/load_test.json and .png (--out to change), and prints a table against the targets:
poll p95 <= 200 ms, steps/s with viewers >= 0.85x alone, RSS growth over the load section < 100 MB, RSS from 5 min
to the end < 100 MB.

Smoke run: `python bench/load_test.py --load-minutes 1 --total-minutes 4 --warmup-seconds 30 --out /tmp/lt.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"poll_p95_ms": 200.0, "steps_ratio": 0.85, "load_rss_growth_mb": 100.0, "flat_rss_growth_mb": 100.0}
RENDERS = ("charts", "grid", "locks")  # what the page fetches when /poll says that group's key changed


# ================================================================================================ browser processes
def _endpoint_ids(client: Any) -> dict[str, int]:
    return {d["api_name"]: d["id"] for d in client.config["dependencies"] if d.get("api_name")}


def _page_load_events(client: Any) -> list[tuple[int, list]]:
    """The events a page load fires (demo.load and its .then), with the inputs' initial values (states are filled in
    by the client)."""
    deps = client.config["dependencies"]
    comps = {c["id"]: c for c in client.config["components"]}
    out = []
    for d in deps:
        if any(t[1] == "load" for t in d["targets"]):
            chain = [d] + [e for e in deps if e.get("trigger_after") == d["id"]]
            for e in chain:
                args = [comps[i]["props"].get("value") for i in e["inputs"] if comps[i]["type"] != "state"]
                out.append((e["id"], args))
    return out


class Browser:
    """One simulated tab: a gradio_client session, calling endpoints the way the page does."""

    def __init__(self, url: str, transport: str):
        import httpx
        from gradio_client import Client

        t = time.perf_counter()
        # A page load: config + the heartbeat stream. No read timeout (gradio_client's default 20 s against the
        # server's 15 s heartbeat drops a tab whose server is busy for a moment; a browser's EventSource waits).
        self.client = Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})
        self.open_ms = (time.perf_counter() - t) * 1e3
        self.transport = transport
        self.ids = _endpoint_ids(self.client)
        self.root = url.rstrip("/") + "/"
        self.http = httpx.Client(base_url=self.client.src_prefixed, timeout=60)
        self.sh = self.client.session_hash

    def call(self, name: str, *data: Any) -> list:
        """A queue=False endpoint: the page POSTs {api_prefix}/run/<name> (gradio_client goes through the queue)."""
        if self.transport == "client":
            out = self.client.predict(*data, api_name="/" + name)
            return list(out) if isinstance(out, tuple) else [out]
        r = self.http.post(f"run/{name}", json={"data": list(data), "event_data": None, "fn_index": self.ids[name],
                                                "trigger_id": None, "session_hash": self.sh})
        r.raise_for_status()
        return r.json()["data"]

    def page_load(self) -> list[float]:
        """The events a page load fires, queued as the page does: the ms each took."""
        took = []
        for fn_index, args in _page_load_events(self.client):
            t = time.perf_counter()
            self.queued(None, *args, fn_index=fn_index)
            took.append((time.perf_counter() - t) * 1e3)
        return took

    def queued(self, name: str | None = None, *data: Any, fn_index: int | None = None) -> Any:
        """A queued event (buttons, page-load events): /queue/join + the SSE stream, as the page does."""
        return self.client.submit(*data, api_name=None if name is None else "/" + name, fn_index=fn_index).result()

    def fetch(self, file_data: Any) -> None:
        """The browser loads an image's URL when it changes."""
        url = file_data.get("url") if isinstance(file_data, dict) else None
        if url:
            self.http.get(url).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.client.close()  # ends the heartbeat stream: the server sees the tab close (unload)


def _emit(msg: dict) -> None:
    print(json.dumps(msg), flush=True)


def viewer_role(a: argparse.Namespace) -> None:
    """A process holding `a.viewers` tabs: open, page-load events, Watch, then the 1 s timer for `a.seconds`."""
    os.nice(10)
    n, seconds = a.viewers, a.seconds
    recs: list[tuple[float, int, str, float, bool]] = []  # (t since polling began, viewer, what, ms, ok)
    lock = threading.Lock()
    start: list[float] = []
    ready = threading.Barrier(n + 1, action=lambda: start.append(time.monotonic()))
    stats = {"ticks": 0, "dropped_ticks": 0, "errors": 0, "error_samples": []}
    tabs: list[Browser | None] = [None] * n

    def rec(i: int, what: str, ms: float, ok: bool = True) -> None:
        with lock:
            recs.append((time.monotonic() - start[0] if start else -1.0, i, what, round(ms, 2), ok))

    def fail(i: int, what: str, t0: float, exc: BaseException) -> None:
        rec(i, what, (time.perf_counter() - t0) * 1e3, False)
        with lock:
            stats["errors"] += 1
            if len(stats["error_samples"]) < 5:
                stats["error_samples"].append(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")

    def tab(i: int) -> None:
        time.sleep(i * 0.4)  # tabs open a little apart, not in lockstep
        try:
            b = tabs[i] = Browser(a.url, a.transport)
            rec(i, "open", b.open_ms)
            for ms in b.page_load():
                rec(i, "page_load_event", ms)
            if a.watch:
                t = time.perf_counter()
                b.queued("watch")
                rec(i, "watch", (time.perf_counter() - t) * 1e3)
        except Exception as exc:  # noqa: BLE001 - recorded, the tab still ticks (or fails trying)
            fail(i, "open", time.perf_counter(), exc)
        ready.wait()
        b = tabs[i]
        if b is None:
            return
        keys: dict[str, Any] = {k: None for k in RENDERS}
        png, charts_at = None, -math.inf
        end = start[0] + seconds
        nxt = time.monotonic() + (i % 10) / 10  # the tabs' timers are not in phase
        while True:
            time.sleep(max(0.0, nxt - time.monotonic()))
            if time.monotonic() >= end:
                break
            with lock:
                stats["ticks"] += 1
            t0 = time.perf_counter()
            try:
                _, *new = b.call("poll")
                t1 = time.perf_counter()
                rec(i, "poll", (t1 - t0) * 1e3)
                new = dict(zip(RENDERS, new))
                for k in RENDERS:
                    if new[k] == keys[k] or (k == "charts" and time.monotonic() - charts_at < a.charts_every - 0.05):
                        continue
                    if k == "charts":
                        charts_at = time.monotonic()
                    t = time.perf_counter()
                    try:
                        out = b.call(k, *{"charts": (0.6, "whole run"), "grid": (True,), "locks": (new[k],)}[k])
                        if k == "grid" and isinstance(out[0], dict) and out[0].get("url") != png:
                            b.fetch(out[0])
                            png = out[0].get("url")
                        rec(i, k, (time.perf_counter() - t) * 1e3)
                        keys[k] = new[k]
                    except Exception as exc:  # noqa: BLE001
                        fail(i, k, t, exc)
                rec(i, "tick", (time.perf_counter() - t0) * 1e3)
            except Exception as exc:  # noqa: BLE001
                fail(i, "poll", t0, exc)
            # setInterval(1000) with trigger_mode="once": a tick that fires while the last one is pending is dropped
            nxt += 1.0
            late = time.monotonic() - nxt
            if late > 0:
                skip = math.ceil(late)
                nxt += skip
                with lock:
                    stats["dropped_ticks"] += skip

    threads = [threading.Thread(target=tab, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    _emit({"event": "ready", "opened": sum(b is not None for b in tabs)})
    for t in threads:
        t.join()
    _emit({"event": "done"})
    for b in tabs:
        if b is not None:
            try:
                b.close()
            except Exception:  # noqa: BLE001
                pass
    cpu = os.times()
    Path(a.out).write_text(json.dumps({"records": recs, "cpu_s": cpu.user + cpu.system, **stats}))
    _emit({"event": "exit"})


def churn_role(a: argparse.Namespace) -> None:
    """Tabs opened one after another: page load, a few ticks with every render, close."""
    os.nice(10)
    for i in range(a.churn):
        b = Browser(a.url, "browser")
        b.page_load()
        for _ in range(3):
            _, ck, gk, lk, _ = b.call("poll")
            b.call("charts", 0.6, "whole run")
            b.call("grid", True)
            b.call("locks", lk)
        b.close()
        if (i + 1) % a.churn_every == 0 or i + 1 == a.churn:
            _emit({"event": "tabs", "n": i + 1})
    _emit({"event": "exit"})


def churn(a: argparse.Namespace) -> dict:
    """Server memory while `a.churn` tabs come and go (no training): what each visitor leaves behind."""
    srv = Server(a)
    cap = srv.demo.state_session_capacity
    log(f"app on {srv.url}; {a.churn} tabs one after another (Gradio keeps at most {cap} sessions)")
    proc, q = spawn("churn", "--url", srv.url, "--churn", str(a.churn), "--churn-every", str(a.churn_every))
    rows = [{"tabs": 0, "rss_mb": round(rss_mb(), 1), **srv.sizes()}]
    try:
        while True:
            msg = expect(q, "tabs", 600)
            rows.append({"tabs": msg["n"], "rss_mb": round(rss_mb(), 1), **srv.sizes()})
            log(f"{msg['n']:4d} tabs: RSS {rows[-1]['rss_mb']:.0f} MB, Gradio sessions {rows[-1]['gradio_sessions']}, "
                f"app sessions {rows[-1]['app_sessions']}")
            if msg["n"] >= a.churn:
                break
        expect(q, "exit", 60)
        proc.wait(timeout=60)
        time.sleep(3)
        rows.append({"tabs": a.churn, "after_s": 3, "rss_mb": round(rss_mb(), 1), **srv.sizes()})
    finally:
        srv.close()
    return {"command": "python bench/load_test.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "state_session_capacity": cap,
            "loadavg": [round(x, 2) for x in os.getloadavg()], "samples": rows}


def owner_role(a: argparse.Namespace) -> None:
    """The tab that trains: choose the preset, press Train, keep the tab (and so the run) open until stdin closes."""
    os.nice(10)
    b = Browser(a.url, "browser")
    b.page_load()
    # the preset dropdown: fills the knobs (and the session's config state); its last output is the dropdown itself
    knobs = b.queued("load_preset", a.preset)[:-1]
    status = b.queued("train", *knobs)  # the Train button with those knobs
    _emit({"event": "training", "session_hash": b.sh, "status": status})
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    while not closed.wait(a.keepalive):
        try:
            b.call("poll")  # the tab is looked at now and then (a hidden tab does not tick)
        except Exception as exc:  # noqa: BLE001
            _emit({"event": "keepalive_error", "error": str(exc)[:200]})
    b.close()


# ================================================================================================ the server side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TRAINING_PIDS: set[int] = set()  # with DQNGAN_RUNNER=process: the runs' child processes count as the app's memory


def rss_mb(pid: int | str = "self") -> float:
    total = 0.0
    for p in [pid, *(sorted(TRAINING_PIDS) if pid == "self" else [])]:
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:  # a training process that has ended
            continue
        total += next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), 0.0)
    return total or float("nan")


def cpu_busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores), from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]  # nearest-rank


def lat_stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50_ms": round(pct(xs, 50), 1), "p95_ms": round(pct(xs, 95), 1),
            "p99_ms": round(pct(xs, 99), 1), "max_ms": round(max(xs), 1), "mean_ms": round(statistics.fmean(xs), 1)}


class Server:
    def __init__(self, a: argparse.Namespace):
        sys.path.insert(0, str(ROOT))
        from dqngan.ui import build_demo, launch_kwargs

        ck = None if a.checkpoint == "none" else a.checkpoint
        self.demo = build_demo(checkpoint=ck, preset=a.preset)
        self.demo.queue(max_size=64, default_concurrency_limit=2)  # as app.py
        self.server_ms = {k: array("f") for k in ("poll", *RENDERS)}  # server-side handler time, load phases only
        self.timing = threading.Event()
        self._wrap_handlers()
        self.port = free_port()
        _, self.url, _ = self.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=self.port,
                                          quiet=True, **launch_kwargs())
        self.reg = self.demo.ctx.registry
        self.run = None

    def _wrap_handlers(self) -> None:
        """Time the poll / render handlers as Gradio's worker runs them (to tell server time from transport time)."""
        import functools

        for block_fn in self.demo.fns.values():
            if block_fn.api_name in self.server_ms:
                fn, sink = block_fn.fn, self.server_ms[block_fn.api_name]

                @functools.wraps(fn)
                def timed(*args: Any, __fn: Any = fn, __sink: Any = sink, **kw: Any) -> Any:
                    t = time.perf_counter()
                    try:
                        return __fn(*args, **kw)
                    finally:
                        if self.timing.is_set():
                            __sink.append((time.perf_counter() - t) * 1e3)

                block_fn.fn = timed

    def sizes(self) -> dict:
        """What has to stay bounded: sessions (ours and Gradio's), the run's history, grids, replay, render cache."""
        d: dict[str, Any] = {"app_sessions": len(self.reg._sessions), "runs": len(self.reg.runs())}
        holder = getattr(self.demo, "state_holder", None)
        if holder is not None:
            d["gradio_sessions"] = len(holder.session_data)
        for r in self.reg.runs():
            if getattr(r.runner, "pid", None):
                TRAINING_PIDS.add(r.runner.pid)
        run = self.run
        if run is not None and getattr(run.runner, "pid", None):  # a process runner: only what its snapshot shows
            snap = run.runner.snapshot()
            d["grids"] = len(snap.get("grids") or [])
            hist = snap.get("history") or {}
            d["history_max_len"] = max((len(v["step"]) for v in hist.values() if isinstance(v, dict)), default=0)
            d["render_cache"] = len(run._memo)
        elif run is not None:
            with run.runner.model_access() as tr:  # between two training steps
                series = {k: len(s.steps) for k, s in tr.history.series.items()}
                d["grids"] = len(tr.grids)
                d["history_len_cap"] = tr.history.maxlen
                d["replay"] = len(tr.replay)
                d["replay_capacity"] = tr.replay.capacity
            d["history_max_len"] = max(series.values(), default=0)
            d["history_series"] = len(series)
            d["history_points"] = sum(series.values())
            d["render_cache"] = len(run._memo)
        return d

    def close(self) -> None:
        self.reg.close()
        self.demo.close()


def spawn(role: str, *args: str) -> tuple[subprocess.Popen, queue.Queue]:
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", role, *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # stderr: ours
    q: queue.Queue = queue.Queue()

    def read() -> None:
        for line in p.stdout:
            try:
                q.put(json.loads(line))
            except ValueError:
                pass
        q.put({"event": "eof"})

    threading.Thread(target=read, daemon=True).start()
    return p, q


def expect(q: queue.Queue, event: str, timeout: float) -> dict:
    end = time.monotonic() + timeout
    while True:
        msg = q.get(timeout=max(0.1, end - time.monotonic()))
        if msg.get("event") == event:
            return msg
        if msg.get("event") == "eof":
            raise RuntimeError(f"child process exited before {event!r}")


def controller(a: argparse.Namespace) -> dict:
    import torch

    out_json = Path(a.out)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    srv = Server(a)
    torch_threads = torch.get_num_threads()
    log(f"app on {srv.url} (pid {os.getpid()}, RSS {rss_mb():.0f} MB); owner presses Train ({a.preset} preset)")
    owner, oq = spawn("owner", "--url", srv.url, "--preset", a.preset, "--keepalive", str(a.keepalive))
    msg = expect(oq, "training", 300)
    sid = msg["session_hash"]
    t_train = time.monotonic()
    for _ in range(100):
        runs = [r for r in srv.reg.runs() if r.owner == sid]
        if runs:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"no run for the owner's session: {msg}")
    srv.run = run = runs[0]
    log(f"training: {run.label} ({run.runner.cfg.to_dict()['width']} width, {msg['status'].splitlines()[0]})")

    def now() -> float:
        return time.monotonic() - t_train

    samples: list[dict] = []
    phase = {"name": "warmup"}
    stop = threading.Event()

    import tracemalloc

    def sample() -> None:
        la = os.getloadavg()
        traced = {"traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1)} if tracemalloc.is_tracing() else {}
        split = {"server_rss_mb": round(rss_mb(os.getpid()), 1)} if TRAINING_PIDS else {}  # the rest: training
        split["server_threads"] = threading.active_count()
        samples.append({"t": round(now(), 1), "rss_mb": round(rss_mb(), 1), **split, "phase": phase["name"],
                        "step": run.runner.step_count, "load1": la[0], **srv.sizes(), **traced})

    def sampler() -> None:
        while not stop.is_set():
            sample()
            stop.wait(a.rss_every)

    threading.Thread(target=sampler, daemon=True, name="rss-sampler").start()
    phases: list[dict] = []
    views: list[dict] = []

    def mark() -> dict:
        return {"t": now(), "step": run.runner.step_count, "cpu": proc_cpu_s(), "busy": cpu_busy_s(),
                "load1": os.getloadavg()[0]}

    def record(name: str, kind: str, m0: dict, m1: dict, **extra: Any) -> dict:
        dt = m1["t"] - m0["t"]
        if run.runner.status != "running":
            snap = run.snap or {}
            raise RuntimeError(f"the training run stopped during {name}: status {run.runner.status}, error "
                               f"{snap.get('error')}, message {snap.get('message')}, owner session still registered: "
                               f"{sid in srv.reg._sessions}")
        ph = {"name": name, "kind": kind, "t0": round(m0["t"], 1), "t1": round(m1["t"], 1), "seconds": round(dt, 1),
              "steps": m1["step"] - m0["step"], "steps_per_s": round((m1["step"] - m0["step"]) / dt, 3),
              "server_cores": round((m1["cpu"] - m0["cpu"]) / dt, 2),
              "machine_busy_cores": round((m1["busy"] - m0["busy"]) / dt, 2), "load1_end": m1["load1"], **extra}
        phases.append(ph)
        log(f"{name:>8}: {ph['seconds']:6.1f} s, {ph['steps_per_s']:6.2f} steps/s, server {ph['server_cores']:.2f} "
            f"cores, machine busy {ph['machine_busy_cores']:.2f} cores"
            + (f", poll p95 {extra['poll']['p95_ms']} ms" if "poll" in extra and extra["poll"].get("n") else ""))
        return ph

    growth: list[dict] = []  # --tracemalloc: Python allocations that grew since the end of alone1

    def alone(name: str, seconds: float, kind: str = "alone") -> None:
        phase["name"] = name
        m0 = mark()
        time.sleep(seconds)
        record(name, kind, m0, mark())
        if a.tracemalloc and kind == "alone":
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            if not growth:
                growth.append({"phase": name, "snapshot": snap})
                return
            top = snap.compare_to(growth[0]["snapshot"], "traceback")[:8]
            growth.append({"phase": name, "rss_mb": round(rss_mb(), 1),
                           "traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1),
                           "top": [{"kb": round(d.size_diff / 1024), "count": d.count_diff,
                                    "where": [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}"
                                              for f in d.traceback][-8:]} for d in top]})
            log(f"  Python allocations grown since {growth[0]['phase']}: "
                + ", ".join(f"{t['kb']} KB at {t['where'][-1]}" for t in growth[-1]["top"][:4]))

    def load(k: int) -> None:
        name = f"load{k}"
        phase["name"] = name
        per = max(1, a.viewers_per_proc)
        counts = [min(per, a.viewers - i) for i in range(0, a.viewers, per)]
        files = [out_json.parent / f".{out_json.stem}.{name}.{j}.json" for j in range(len(counts))]
        procs = [spawn("viewer", "--url", srv.url, "--viewers", str(c), "--seconds", str(a.load_seconds),
                       "--transport", a.transport, "--charts-every", str(a.charts_every), "--out", str(f),
                       *([] if a.watch else ["--no-watch"]))
                 for c, f in zip(counts, files)]
        t_open = now()
        for _, q in procs:
            expect(q, "ready", 300)
        srv.timing.set()
        m0 = mark()
        for _, q in procs:
            expect(q, "done", a.load_seconds + 120)
        m1 = mark()
        srv.timing.clear()
        for p, q in procs:
            expect(q, "exit", 120)
            p.wait(timeout=60)
        recs, cpu, ticks, dropped, errors, samples_err = [], 0.0, 0, 0, 0, []
        for f in files:
            d = json.loads(f.read_text())
            f.unlink()
            recs += d["records"]
            cpu += d["cpu_s"]
            ticks += d["ticks"]
            dropped += d["dropped_ticks"]
            errors += d["errors"]
            samples_err += d["error_samples"]
        by: dict[str, list[float]] = {}
        for _t, _i, what, ms, ok in recs:
            if ok:
                by.setdefault(what, []).append(ms)
        views.append({"phase": name, "poll": array("f", by.get("poll", [])), "tick": array("f", by.get("tick", []))})
        record(name, "load", m0, m1, opening_s=round(m0["t"] - t_open, 1), viewers=a.viewers,
               poll=lat_stats(by.get("poll", [])), tick=lat_stats(by.get("tick", [])),
               renders={k: lat_stats(by.get(k, [])) for k in RENDERS},
               arrival={k: lat_stats(by.get(k, [])) for k in ("open", "page_load_event", "watch")},
               ticks=ticks, dropped_ticks=dropped, errors=errors, error_samples=samples_err,
               viewer_cpu_s=round(cpu, 1))
        time.sleep(a.gap)  # tabs closed: unload events run before the next measurement

    try:
        alone("warmup", a.warmup_seconds, kind="warmup")
        if a.tracemalloc:
            tracemalloc.start(8)
        sample()
        n_load = max(1, math.ceil(a.load_minutes * 60 / a.load_seconds - 1e-9))
        load_start = {"t": now(), "rss_mb": rss_mb(), **srv.sizes()}
        for k in range(1, n_load + 1):
            alone(f"alone{k}", a.alone_seconds)
            load(k)
        alone(f"alone{n_load + 1}", a.alone_seconds)
        sample()
        load_end = {"t": now(), "rss_mb": rss_mb(), **srv.sizes()}
        rest = a.total_minutes * 60 - now()
        if rest > 1:
            alone("tail", rest, kind="tail")
        sample()
    finally:
        stop.set()
        end_sizes = srv.sizes()
        status = run.runner.status
        owner.stdin.close()
        try:
            owner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            owner.kill()
        srv.close()
    load1 = os.getloadavg()
    res = summarize(a, srv, phases, views, samples, load_start, load_end, end_sizes, status, load0, load1,
                    torch_threads)
    if growth:
        res["tracemalloc_growth"] = [{k: v for k, v in g.items() if k != "snapshot"} for g in growth]
    return res


def summarize(a, srv, phases, views, samples, load_start, load_end, end_sizes, status, load0, load1,
              torch_threads) -> dict:
    loads = [p for p in phases if p["kind"] == "load"]
    alones = [p for p in phases if p["kind"] == "alone"]
    polls = [ms for v in views for ms in v["poll"]]
    ticks = [ms for v in views for ms in v["tick"]]
    rate_l = [p["steps_per_s"] for p in loads]
    rate_a = [p["steps_per_s"] for p in alones]
    tot_l = sum(p["steps"] for p in loads) / sum(p["seconds"] for p in loads)
    tot_a = sum(p["steps"] for p in alones) / sum(p["seconds"] for p in alones)
    paired = []  # each load phase against the mean of the alone phases either side of it
    for p in loads:
        k = int(p["name"][4:])
        nb = [q["steps_per_s"] for q in alones if q["name"] in (f"alone{k}", f"alone{k + 1}")]
        paired.append(round(p["steps_per_s"] / statistics.fmean(nb), 3))
    at5 = min(samples, key=lambda s: abs(s["t"] - 300.0))
    tail_from = [s for s in samples if s["t"] >= at5["t"]]
    tail = [s for s in samples if s["t"] >= load_end["t"]]  # no viewers, no new sessions: should be flat
    tail_fit = None
    if len(tail) >= 3 and tail[-1]["t"] - tail[0]["t"] > 60:
        tm, rm = statistics.fmean(x["t"] for x in tail), statistics.fmean(x["rss_mb"] for x in tail)
        slope = sum((x["t"] - tm) * (x["rss_mb"] - rm) for x in tail) / sum((x["t"] - tm) ** 2 for x in tail)
        tail_fit = {"from_t": tail[0]["t"], "to_t": tail[-1]["t"], "rss_min_mb": min(x["rss_mb"] for x in tail),
                    "rss_max_mb": max(x["rss_mb"] for x in tail), "slope_mb_per_hour": round(slope * 3600, 1)}
    # What a class leaves behind, robust to the training's own swings (FID every fid_every steps allocates ~50 MB
    # and frees it; a single sample lands anywhere in that cycle): the median RSS of the alone phase after each load
    # phase minus that of the alone phase before it, for the whole app and for the server alone.
    def in_phase(name: str, key: str) -> list[float]:
        p = next((q for q in phases if q["name"] == name), None)
        return [x[key] for x in samples if p and p["t0"] <= x["t"] <= p["t1"] and key in x]

    left_behind = []
    for p in loads:
        k = int(p["name"][4:])
        before, after = f"alone{k}", f"alone{k + 1}"
        row = {"load": p["name"], "samples": [len(in_phase(before, "rss_mb")), len(in_phase(after, "rss_mb"))]}
        for key, out in (("rss_mb", "growth_mb"), ("server_rss_mb", "server_growth_mb")):
            xs, ys = in_phase(before, key), in_phase(after, key)
            if xs and ys:
                row[out] = round(statistics.median(ys) - statistics.median(xs), 1)
        left_behind.append(row)
    res = {
        "command": "python bench/load_test.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch_threads,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "loadavg_start": [round(x, 2) for x in load0], "loadavg_end": [round(x, 2) for x in load1]},
        "settings": {k: getattr(a, k) for k in ("preset", "checkpoint", "viewers", "viewers_per_proc", "transport",
                                                 "watch", "charts_every", "load_minutes", "load_seconds",
                                                 "alone_seconds", "warmup_seconds", "total_minutes", "rss_every",
                                                 "keepalive")},
        "run_status_at_end": status,
        "poll_latency": lat_stats(polls),
        "tick_latency": lat_stats(ticks),
        "server_handler_ms": {k: lat_stats(list(v)) for k, v in srv.server_ms.items()},
        "poll_errors": sum(p["errors"] for p in loads),
        "steps_per_s": {"alone_median": round(statistics.median(rate_a), 3),
                        "viewers_median": round(statistics.median(rate_l), 3),
                        "ratio_of_medians": round(statistics.median(rate_l) / statistics.median(rate_a), 3),
                        "alone_total": round(tot_a, 3), "viewers_total": round(tot_l, 3),
                        "ratio_of_totals": round(tot_l / tot_a, 3), "paired_ratios": paired},
        "load_section": {"start": load_start, "end": load_end,
                         "rss_growth_mb": round(load_end["rss_mb"] - load_start["rss_mb"], 1),
                         "rss_max_mb": max([s["rss_mb"] for s in samples if load_start["t"] <= s["t"] <= load_end["t"]],
                                           default=load_end["rss_mb"]),
                         "left_behind": left_behind},
        "memory": {"rss_start_mb": samples[0]["rss_mb"], "rss_at_5min_mb": at5["rss_mb"], "t_5min": at5["t"],
                   "rss_end_mb": samples[-1]["rss_mb"], "t_end": samples[-1]["t"],
                   "rss_max_mb": max(s["rss_mb"] for s in samples),
                   "rss_max_after_5min_mb": max(s["rss_mb"] for s in tail_from),
                   "growth_5min_to_end_mb": round(samples[-1]["rss_mb"] - at5["rss_mb"], 1),
                   "tail_after_load": tail_fit, "sizes_at_end": end_sizes},
        "phases": phases,
        "rss_samples": samples,
    }
    m, sp, ls = res["memory"], res["steps_per_s"], res["load_section"]
    res["pass"] = {"poll_p95": res["poll_latency"].get("p95_ms", math.inf) <= TARGETS["poll_p95_ms"],
                   "steps_ratio": sp["ratio_of_medians"] >= TARGETS["steps_ratio"],
                   "load_rss_growth": ls["rss_growth_mb"] < TARGETS["load_rss_growth_mb"],
                   "flat_rss": m["growth_5min_to_end_mb"] < TARGETS["flat_rss_growth_mb"]}
    res["targets"] = TARGETS
    res["latency_samples"] = {"poll": [round(x, 1) for x in polls]}
    return res


def report(res: dict) -> None:
    pl, sp, ls, m = res["poll_latency"], res["steps_per_s"], res["load_section"], res["memory"]
    ok = {True: "PASS", False: "FAIL"}
    rows = [
        ("poll latency p95 (p50 / max)", f"{pl['p95_ms']} ms ({pl['p50_ms']} / {pl['max_ms']} ms, n={pl['n']}, "
         f"{res['poll_errors']} errors)", f"<= {TARGETS['poll_p95_ms']:.0f} ms", ok[res["pass"]["poll_p95"]]),
        ("steps/s with viewers / alone", f"{sp['viewers_median']} / {sp['alone_median']} = {sp['ratio_of_medians']} "
         f"(totals {sp['ratio_of_totals']})", f">= {TARGETS['steps_ratio']}", ok[res["pass"]["steps_ratio"]]),
        ("RSS over the load section", f"{ls['start']['rss_mb']:.0f} -> {ls['end']['rss_mb']:.0f} MB "
         f"({ls['rss_growth_mb']:+.0f} MB, max {ls['rss_max_mb']:.0f})", f"< {TARGETS['load_rss_growth_mb']:.0f} MB",
         ok[res["pass"]["load_rss_growth"]]),
        (f"RSS 5 min -> end ({m['t_end'] / 60:.0f} min)", f"{m['rss_at_5min_mb']:.0f} -> {m['rss_end_mb']:.0f} MB "
         f"({m['growth_5min_to_end_mb']:+.0f} MB, max {m['rss_max_after_5min_mb']:.0f})",
         f"< {TARGETS['flat_rss_growth_mb']:.0f} MB", ok[res["pass"]["flat_rss"]]),
    ]
    for lb in ls.get("left_behind", []):
        if "growth_mb" in lb:
            server = f", server {lb['server_growth_mb']:+.0f} MB" if "server_growth_mb" in lb else ""
            rows.append((f"RSS left by {lb['load']} (alone medians)", f"{lb['growth_mb']:+.0f} MB{server} "
                         f"({lb['samples'][0]} / {lb['samples'][-1]} samples)",
                         f"< {TARGETS['load_rss_growth_mb']:.0f} MB",
                         ok[lb["growth_mb"] < TARGETS["load_rss_growth_mb"]]))
    w = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<60}  {r[2]:<10}  {r[3]}")
    if m["tail_after_load"]:
        t = m["tail_after_load"]
        print(f"RSS after the load section ({t['from_t'] / 60:.0f}-{t['to_t'] / 60:.0f} min, no viewers): "
              f"{t['rss_min_mb']:.0f}-{t['rss_max_mb']:.0f} MB, trend {t['slope_mb_per_hour']:+.0f} MB/hour")
    s = m["sizes_at_end"]
    print(f"bounded at the end: history {s.get('history_max_len')} points/series (cap {s.get('history_len_cap')}), "
          f"grids {s.get('grids')}, replay {s.get('replay')}/{s.get('replay_capacity')}, render cache "
          f"{s.get('render_cache')}, app sessions {s.get('app_sessions')}, Gradio sessions {s.get('gradio_sessions')}")
    print(f"load average start {res['machine']['loadavg_start']}, end {res['machine']['loadavg_end']}; "
          f"paired ratios {sp['paired_ratios']}")


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blue, orange, sky, vermilion = "#0072B2", "#E69F00", "#56B4E9", "#D55E00"  # Okabe-Ito: colour-blind safe
    fig, ax = plt.subplots(2, 2, figsize=(12, 7.5))
    s = res["rss_samples"]
    a0 = ax[0, 0]
    for p in res["phases"]:
        if p["kind"] == "load":
            a0.axvspan(p["t0"] / 60, p["t1"] / 60, color=orange, alpha=0.2, lw=0)
    t = [x["t"] / 60 for x in s]
    a0.plot(t, [x["rss_mb"] for x in s], color=blue, label="app (server + training process)"
            if "server_rss_mb" in s[0] else "app")
    if "server_rss_mb" in s[0]:  # a process runner: the server's part, the rest is the training process
        a0.plot(t, [x["server_rss_mb"] for x in s], color=vermilion, ls="--", label="server alone")
        a0.legend(fontsize=8)
    if s[-1]["t"] > 300:
        a0.axvline(5, color="gray", ls=":", lw=1)
    a0.set(xlabel="minutes since Train", ylabel="RSS (MB)",
           title=f"memory (shaded: {res['settings']['viewers']} viewers polling)")
    lo = min(x.get("server_rss_mb", x["rss_mb"]) for x in s)
    a0.set_ylim(lo - 50, max(x["rss_mb"] for x in s) + 50)
    a1 = ax[0, 1]
    ph = [p for p in res["phases"] if p["kind"] in ("alone", "load")]
    a1.bar(range(len(ph)), [p["steps_per_s"] for p in ph],
           color=[orange if p["kind"] == "load" else blue for p in ph])
    a1.set_xticks(range(len(ph)), [p["name"] for p in ph], rotation=45, fontsize=8)
    sp = res["steps_per_s"]
    a1.set(ylabel="training steps/s", title=f"steps/s: alone {sp['alone_median']:.1f} vs viewers "
           f"{sp['viewers_median']:.1f} (median ratio {sp['ratio_of_medians']:.2f})")
    a2 = ax[1, 0]
    polls = res["latency_samples"]["poll"]
    if polls:
        lo_, hi_ = max(0.5, min(polls)), max(polls)
        bins = [lo_ * (hi_ / lo_) ** (i / 60) for i in range(61)]
        a2.hist(polls, bins=bins, color=sky)
        a2.set_xscale("log")
        pl = res["poll_latency"]
        for q, c in (("p50_ms", "k"), ("p95_ms", vermilion)):
            a2.axvline(pl[q], color=c, ls="--", label=f"{q[:3]} {pl[q]} ms")
        a2.axvline(TARGETS["poll_p95_ms"], color="k", ls=":", label="target p95 200 ms")
        a2.legend(fontsize=8)
    a2.set(xlabel="/poll latency seen by the viewer (ms, log)", ylabel="polls",
           title=f"poll latency, {len(polls)} polls")
    a3 = ax[1, 1]
    lp = [p for p in res["phases"] if p["kind"] == "load"]
    x = range(len(lp))
    a3.plot(x, [p["poll"]["p50_ms"] for p in lp], "o-", label="poll p50")
    a3.plot(x, [p["poll"]["p95_ms"] for p in lp], "o-", label="poll p95")
    a3.plot(x, [p["tick"]["p95_ms"] for p in lp], "o--", label="tick p95 (poll + renders)")
    a3.set_xticks(list(x), [p["name"] for p in lp])
    a3.set(ylabel="ms", title="latency per load phase")
    a3.legend(fontsize=8)
    la = res["machine"]
    fig.suptitle(f"load test: {res['settings']['viewers']} viewers, {res['settings']['transport']} transport, "
                 f"{la['cpus']} CPUs, load avg start {la['loadavg_start'][0]} end {la['loadavg_end'][0]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load-minutes", type=float, default=10.0, help="total viewer time, split into load phases")
    ap.add_argument("--load-seconds", type=float, default=120.0, help="seconds per load phase")
    ap.add_argument("--alone-seconds", type=float, default=60.0, help="seconds per alone phase (before each load "
                    "phase and after the last)")
    ap.add_argument("--warmup-seconds", type=float, default=240.0, help="training alone before the first phase")
    ap.add_argument("--total-minutes", type=float, default=30.0, help="keep training (alone) until this long after "
                    "Train, sampling memory")
    ap.add_argument("--viewers", type=int, default=10)
    ap.add_argument("--viewers-per-proc", type=int, default=5, help="tabs per viewer process")
    ap.add_argument("--transport", choices=("browser", "client"), default="browser",
                    help="browser: queue=False endpoints POSTed to /run/<name> as the page does; client: "
                    "everything through gradio_client.predict (the queue)")
    ap.add_argument("--no-watch", dest="watch", action="store_false", help="viewers look at the shared model instead "
                    "of pressing Watch")
    ap.add_argument("--charts-every", type=float, default=1.0, help="a viewer fetches changed charts at most every N "
                    "s (1 = what the page does; more simulates a throttled charts key)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--checkpoint", default="auto", help="base model: auto (the shipped one, as app.py) or none")
    ap.add_argument("--rss-every", type=float, default=10.0)
    ap.add_argument("--keepalive", type=float, default=60.0, help="seconds between the owner tab's polls")
    ap.add_argument("--gap", type=float, default=5.0, help="seconds after viewers close before the next phase")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "load_test.json"))
    ap.add_argument("--tracemalloc", action="store_true", help="diagnosis: trace Python allocations after the "
                    "warmup and log what grew since the end of alone1 at the end of each alone phase (slows the app)")
    ap.add_argument("--churn", type=int, default=0, help="instead of the load test: open this many tabs one after "
                    "another (page load, 3 ticks, close) and record server memory -> <out stem>_churn.json")
    ap.add_argument("--churn-every", type=int, default=25, help=argparse.SUPPRESS)
    ap.add_argument("--role", choices=("controller", "viewer", "owner", "churn"), default="controller",
                    help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "viewer":
        return viewer_role(a)
    if a.role == "owner":
        return owner_role(a)
    if a.role == "churn":
        return churn_role(a)
    if a.churn:
        out = Path(a.out).with_name(Path(a.out).stem + "_churn.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(churn(a), indent=1))
        print(f"wrote {out}")
        return
    res = controller(a)
    out = Path(a.out)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    report(res)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
