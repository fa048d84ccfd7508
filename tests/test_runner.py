"""The background run: commands, live knobs, snapshots that never wait for a step, fair model access, faults."""

import math
import subprocess
import sys
import threading
import time

import pytest
import torch

from dqngan.config import ConfigError


def test_thread_start_pause_resume_step_stop(make_runner):
    r = make_runner()
    r.step(5)
    assert r.wait(60) and r.status == "paused" and r.step_count == 5
    r.start()
    deadline = time.monotonic() + 60
    while r.step_count < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    r.pause()
    assert r.wait(30) and r.status == "paused"
    s = r.step_count
    time.sleep(0.3)
    assert r.step_count == s  # paused means paused
    r.set(lr_g=1e-4, eps_end=0.2, lam_prior=0.5)  # live knobs
    assert r.trainer.opt_g.param_groups[0]["lr"] == 1e-4 and r.trainer.potential.lam == 0.5
    with pytest.raises(ConfigError, match="cannot change during a run"):
        r.set(width=1.0)
    r.resume()
    while r.step_count < s + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    r.stop()
    assert r.status == "stopped" and r.step_count >= s + 3
    snap = r.snapshot()
    assert snap["status"] == "stopped" and snap["config"]["lr_g"] == 1e-4 and snap["step"] == r.step_count


def test_snapshot_history_is_bounded_and_spans_the_run(make_runner, monkeypatch):
    from dqngan import trainer

    # The grid timeline's bound made small (120 -> 8), so that 40 steps overflow it and the 16-point history several
    # times (a grid every step is most of this test's time: 200 steps took ~20 s on 2 cores just to reach 121 grids).
    monkeypatch.setattr(trainer, "MAX_GRIDS", 8)
    r = make_runner(history_len=16, log_every=1, grid_every=1)
    r.step(40)
    assert r.wait(120)
    snap = r.snapshot()
    for name, series in snap["history"].items():
        assert len(series["step"]) <= 16, name
    d = snap["history"]["d_loss"]["step"]
    assert d[0] <= 4 and d[-1] >= 36  # thinned, not truncated
    grids = [g[0] for g in snap["grids"]]
    assert len(grids) <= 9 and grids[0] <= 4 and grids[-1] == 40, grids  # thinned, the newest kept
    v = snap["version"]
    r.step(1)
    assert r.wait(30) and r.snapshot()["version"] > v


def test_a_step_click_reads_back_that_steps_values(make_runner):
    """With log_every 10, a single Step still shows its own values (the narrated step reads them)."""
    r = make_runner(log_every=10, grid_every=1000)
    r.step(3)
    assert r.wait(30)
    stats = r.snapshot()["last_stats"]
    assert {"d_loss", "d_real", "d_fake", "g_loss"} <= set(stats) and all(math.isfinite(v) for v in stats.values())
    r.step(1, "g")
    assert r.wait(30) and set(r.snapshot()["last_stats"]) == {"g_loss"}


def test_exception_in_thread_is_reported(make_runner):
    r = make_runner()
    r.trainer.run(steps=2)

    def broken(batch_size):
        raise RuntimeError("disk on fire")

    r.trainer.sampler.next = broken  # fault injection into the data path
    r.start()
    assert r.wait(30)
    snap = r.snapshot()
    assert snap["status"] == "error"
    assert "RuntimeError: disk on fire" in snap["error"] and "Traceback" in snap["error_trace"]


def test_nan_pauses_and_restores_last_good_weights(make_runner):
    r = make_runner()
    t = r.trainer
    t.run(steps=30)
    with torch.no_grad():
        t.D.head.weight.fill_(float("nan"))
    r.start()
    assert r.wait(30)
    snap = r.snapshot()
    assert snap["status"] == "paused" and "non-finite" in snap["message"]
    assert all(torch.isfinite(p).all() for p in t.D.parameters())
    assert t.step_count <= 30
    r.step(3)  # resuming from the restored state works
    assert r.wait(30) and r.status == "paused"
    assert math.isfinite(t.history.last("d_loss"))


def test_nan_after_a_single_step_click_is_caught_at_once(make_runner):
    """Steps between log intervals are checked when a Step click's budget ends, not 10 steps later."""
    r = make_runner(log_every=10, grid_every=1000)
    r.step(2)
    assert r.wait(30)
    with torch.no_grad():
        r.trainer.D.head.weight.fill_(float("nan"))
    r.step(1)
    assert r.wait(30)
    assert "non-finite" in r.snapshot()["message"] and r.step_count < 3
    assert all(torch.isfinite(p).all() for p in r.trainer.D.parameters())


def test_explorer_api_and_snapshot_never_wait_for_the_model_lock(make_runner):
    r = make_runner()
    r.step(3)
    assert r.wait(30)
    z = torch.randn(4, r.cfg.z_dim)
    q = r.q_values(z, t=1)
    assert q.shape == (4, 2 * r.cfg.n_dirs + 1)
    assert torch.allclose(r.score(z), r.trainer.potential(z, torch.full((4,), -1)))
    d = r.directions()
    assert d.shape == (r.cfg.n_dirs, r.cfg.z_dim)
    d.zero_()  # a copy: the agent's directions are untouched
    assert r.trainer.env.directions.abs().sum() > 0
    held, release = threading.Event(), threading.Event()

    def long_step():  # stands in for a slow training step holding the model lock
        with r._lock:
            held.set()
            release.wait(10)

    th = threading.Thread(target=long_step)
    th.start()
    held.wait(5)
    t0 = time.monotonic()
    snap = r.snapshot()
    assert time.monotonic() - t0 < 1.0 and snap["step"] == 3
    release.set()
    th.join()


def test_save_during_training_is_not_starved(make_runner, tmp_path, mnist):
    """A Save click while the thread trains flat out gets the models between two steps (model_access)."""
    from dqngan.checkpoint import load_checkpoint

    r = make_runner()
    r.start()
    deadline = time.monotonic() + 30
    while r.step_count < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    path = r.save(tmp_path / "ck")
    assert time.monotonic() - t0 < 20 and r.status == "running"
    r.stop()
    c = load_checkpoint(path, device="cpu", data=mnist)
    assert 3 <= c.step_count <= r.step_count


def test_step_modes_through_the_runner(make_runner):
    frozen = make_runner(g_every=0)
    with pytest.raises(ConfigError, match="G is frozen"):
        frozen.step(1, "g")  # refused before the thread starts
    assert frozen.status == "idle"
    frozen.step(2, "d")
    assert frozen.wait(30) and frozen.step_count == 2 and frozen.status == "paused"
    with pytest.raises(ValueError):
        frozen.step(1, "everything")


def test_no_engine_module_imports_the_ui():
    """The engine never imports Gradio or dqngan.ui: the UI sends commands to a Runner and reads snapshots."""
    engine = ["agent", "argtypes", "benchmark", "classifiers", "checkpoint", "cli", "config", "data", "device",
              "directions", "env", "evaluate", "evaluate_cli", "history", "hub", "hub_cli", "lab", "losses", "metrics",
              "modelcard", "models", "plots", "readbacks", "replay", "runner", "trainer"]
    code = ("import sys\n" + "".join(f"import dqngan.{m}\n" for m in engine) +
            "bad = [m for m in sys.modules if m == 'gradio' or m.startswith(('gradio.', 'dqngan.ui'))]\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
