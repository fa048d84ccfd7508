"""A class of 30 pressing buttons at once: `python bench/class_clicks.py [--students 30]`.

The app (as app.py composes it, one training slot: the 2-core default) serves on a local port in this process. A
teacher's session (a gradio_client, like a page) trains; then N students, each a session of their own, press Train at
the same instant (threads released by one barrier), then Pause, Step and Reset at the same instant. Checked: the cap
holds (the teacher's run is the only one training; every student gets the readable "busy" message), no student's
click changes the teacher's run (it keeps training, its step count rises, its config is untouched), and how long the
clicks take to answer. Writes bench/out/class_clicks.json. The 10-minute watching load is bench/load_test.py
(`--viewers 30 --load-seconds 600`, README "Reliability").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"


def at_once(clients: list, call) -> list[tuple[float, str]]:
    """Run call(client) in one thread per client, all released together; (seconds, first line of the answer)."""
    gate = threading.Barrier(len(clients))
    out: list = [None] * len(clients)

    def one(i: int, c) -> None:
        gate.wait()
        t0 = time.perf_counter()
        try:
            r = call(c)
            r = r[0] if isinstance(r, (list, tuple)) else r
        except Exception as e:  # noqa: BLE001 - recorded, counted as a failure
            r = f"ERROR {type(e).__name__}: {e}"
        out[i] = (time.perf_counter() - t0, str(r))

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="dqngan-class-")
    from gradio_client import Client
    from tqdm import tqdm

    from dqngan.ui import build_demo, launch_kwargs

    demo = build_demo(max_running=1, save_root=Path(os.environ["GRADIO_TEMP_DIR"]) / "saved")
    demo.queue(max_size=64, default_concurrency_limit=2)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_kwargs())
    reg = demo.ctx.registry
    try:
        teacher = Client(url, verbose=False, download_files=False)
        teacher.predict("cpu", api_name="/load_preset")
        t_status = teacher.predict(api_name="/train")
        run = next(r for r in reg.runs() if r.owner == teacher.session_hash)
        cfg0 = run.runner.cfg.to_dict()
        time.sleep(5)
        students = [Client(url, verbose=False, download_files=False)
                    for _ in tqdm(range(a.students), desc="students connect", unit="tab")]
        result: dict = {"command": "python bench/class_clicks.py " + " ".join(sys.argv[1:]),
                        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                        "runner": type(run.runner).__name__, "students": a.students,
                        "teacher_status": t_status.splitlines()[0], "rounds": {}}
        for name, call in (("train", lambda c: c.predict(api_name="/train")),
                           ("pause", lambda c: c.predict(api_name="/pause")),
                           ("step", lambda c: c.predict(3, api_name="/step")),
                           ("reset", lambda c: c.predict(api_name="/reset"))):
            s0, t0 = run.runner.step_count, time.monotonic()
            answers = at_once(students, call)
            time.sleep(3)
            rate = (run.runner.step_count - s0) / (time.monotonic() - t0)
            lat = sorted(x[0] for x in answers)
            training = [r for r in reg.runs() if r.running]
            result["rounds"][name] = {
                "p50_s": round(statistics.median(lat), 2), "p95_s": round(lat[int(0.95 * (len(lat) - 1))], 2),
                "max_s": round(lat[-1], 2), "errors": sum(x[1].startswith("ERROR") for x in answers),
                "busy_answers": sum("busy" in x[1] for x in answers),
                "runs_training_after": len(training), "teacher_still_training": run.running,
                "teacher_steps_per_s_during": round(rate, 1),
                "teacher_config_unchanged": run.runner.cfg.to_dict() == cfg0,
                "example_answer": answers[0][1].splitlines()[0][:160]}
            print(name, result["rounds"][name], flush=True)
        for c in [teacher, *students]:
            c.close()
    finally:
        reg.close()
        demo.close()
    ok = all(r["runs_training_after"] == 1 and r["teacher_still_training"] and r["teacher_config_unchanged"]
             and r["errors"] == 0 for r in result["rounds"].values())
    result["isolation_and_cap_hold"] = ok
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "class_clicks.json").write_text(json.dumps(result, indent=2))
    print("cap and isolation hold:" if ok else "FAILED:", ok, "->", OUT / "class_clicks.json")


if __name__ == "__main__":
    main()
