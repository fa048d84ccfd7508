"""The process-backed runner (DQNGAN_RUNNER=process): a real child process trains; the parent sees the Runner API."""

import os
import signal
import time

import pytest
import torch

from dqngan.config import ConfigError, make_config
from dqngan.process_runner import ProcessEnded, ProcessRunner


@pytest.fixture(scope="module")
def runner():
    r = ProcessRunner.fresh(make_config("tiny"), "cpu")
    yield r
    r.stop()


def test_commands_snapshot_reads_and_knobs_cross_the_process(runner, tmp_path):
    assert runner.pid != os.getpid() and runner.alive
    runner.step(12)
    assert runner.wait(60) and runner.status == "paused" and runner.step_count == 12
    snap = runner.snapshot()
    assert snap["step"] == 12 and snap["status"] == "paused" and snap["history"]["d_loss"]["step"]
    z = torch.randn(3, runner.cfg.z_dim)
    img = runner.generate(z)
    assert img.shape == (3, 28, 28) and torch.equal(img, runner.generate(z))  # G_ema is deterministic
    assert runner.directions().shape[1] == runner.cfg.z_dim
    assert runner.q_values(z).shape[0] == 3 and runner.score(z).shape == (3,)
    with pytest.raises(ConfigError, match="width"):  # the child's own error type, readable
        runner.set(width=3)
    runner.set(lr_d=1e-3)
    assert runner.cfg.lr_d == 1e-3 and runner.snapshot()["config"]["lr_d"] == 1e-3
    runner.start()
    t0 = time.monotonic()
    while runner.step_count < 20 and time.monotonic() - t0 < 60:
        time.sleep(0.1)
    runner.pause()
    assert runner.wait(30) and runner.step_count >= 20
    path = runner.save(tmp_path / "ck")
    from dqngan.checkpoint import load_checkpoint
    t = load_checkpoint(path, device="cpu")
    assert t.step_count == runner.step_count
    with pytest.raises(TypeError, match="another process"):
        with runner.model_access():
            pass


def test_a_bad_recipe_raises_the_childs_readable_error():
    from dqngan.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        ProcessRunner.from_checkpoint("/nonexistent/ck", "cpu")


def test_a_killed_child_reads_as_an_error_not_a_hang():
    r = ProcessRunner.fresh(make_config("tiny"), "cpu", with_data=False)
    r.step(1)
    assert r.wait(60)
    os.kill(r.pid, signal.SIGKILL)
    t0 = time.monotonic()
    while r.alive and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    snap = r.snapshot()
    assert snap["status"] == "error" and "ended unexpectedly" in snap["error"] and r.status == "error"
    with pytest.raises(ProcessEnded):
        r.step(1)
    r.stop()  # idempotent after a crash


def test_the_app_trains_in_a_child_process(tmp_path, monkeypatch):
    """build_demo(runner="process"): a session's Train click trains in a child; the app process stays out of it."""
    from dqngan.ui import build_demo

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    demo = build_demo(checkpoint=None, preset="tiny", device="cpu", max_running=1, save_root=tmp_path / "saved",
                      runner="process")
    try:
        ctx = demo.ctx
        run = ctx.registry.own("s1", lambda: ctx.fresh(make_config("tiny")))
        assert isinstance(run.runner, ProcessRunner) and run.runner.pid != os.getpid()
        ctx.registry.train(run, 5)
        assert run.runner.wait(60) and run.refresh()["step"] == 5
        ctx.registry.drop("s1")
        t0 = time.monotonic()
        while run.runner.alive and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        assert not run.runner.alive  # closing the session ends its process
    finally:
        demo.ctx.registry.close()
        demo.close()


def test_default_kind_is_a_process_on_a_cpu_and_a_thread_with_cuda(monkeypatch):
    from dqngan import process_runner

    monkeypatch.delenv("DQNGAN_RUNNER", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert process_runner.default_kind() == "process"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # CUDA graphs stay in the capturing process
    assert process_runner.default_kind() == "thread"
    monkeypatch.setenv("DQNGAN_RUNNER", "process")
    assert process_runner.default_kind() == "process"
    monkeypatch.setenv("DQNGAN_RUNNER", "threads")
    with pytest.raises(ValueError, match="must be 'process' or 'thread'"):
        process_runner.default_kind()
