"""Faults (issue 6, item 2): kill -9 during checkpoint writes, NaN weights mid-run and an exception in the training
thread, seen through the app's handlers. The full kill benchmark (20 kills) is bench/kill_during_save.py."""

import importlib.util
import math
import random
from pathlib import Path

import pytest
import torch
from helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("kill_during_save", ROOT / "bench" / "kill_during_save.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_three_kills_during_saves_then_resume(tmp_path):
    """A fresh run and two resumed runs of the same directory are killed (randomly, as a save starts, at the swap);
    after each kill the directory loads, and the next run resumes from it; finally 2 more steps land exactly."""
    kd = _bench()
    out, rng = tmp_path / "ck", random.Random(1)
    steps = []
    for i, mode in enumerate(("random", "tmp", "swap")):
        rec = kd.spawn_and_kill(out, mode, rng, resume=i > 0)
        assert "error" not in rec, rec
        assert kd.check_loads(out, rec), rec
        steps.append(rec["step"])
    assert steps[0] > 0 and steps[1] >= steps[0] and steps[2] >= steps[1]  # each run continued the last
    assert kd.check_resumes(out, rec), rec


def test_kill_while_deleting_a_complete_fallback_leaves_a_loadable_one(mnist, tiny_cfg, tmp_path, monkeypatch):
    """After a kill between the two renames of a save, DIR is gone and DIR.tmp and DIR.old are complete. The next
    save (e.g. by the resumed run) first deletes DIR.tmp; killed half-way through that, a checkpoint must still load."""
    import shutil

    from dqngan import checkpoint
    from dqngan.checkpoint import load_checkpoint, resolve, save_checkpoint
    from dqngan.trainer import Trainer

    t = Trainer(tiny_cfg, "cpu", data=mnist)
    t.run(steps=2)
    ck = save_checkpoint(t, tmp_path / "ck")
    shutil.copytree(ck, tmp_path / "ck.tmp")
    ck.rename(tmp_path / "ck.old")

    class Killed(BaseException):
        pass

    def rmtree_killed_half_way(d, ignore_errors=False):  # deletes the first file it meets, then "kill -9"
        files = sorted(p for p in Path(d).iterdir())
        if files:
            files[0].unlink()
        raise Killed

    monkeypatch.setattr(checkpoint.shutil, "rmtree", rmtree_killed_half_way)
    with pytest.raises(Killed):
        save_checkpoint(t, ck)
    monkeypatch.undo()
    c = load_checkpoint(ck, device="cpu", data=mnist)
    assert c.step_count == 2 and resolve(ck).name == "ck.old"


def test_nan_weights_are_not_taken_as_the_last_good_state(mnist, tiny_cfg):
    """Weights that went non-finite in an update whose loss was still finite must not become the restore point
    (the safety net copies the state every 25 steps, at a check that found the weights and statistics finite)."""
    from dqngan.trainer import GOOD_EVERY, Trainer

    t = Trainer(tiny_cfg.replace(grid_every=1000), "cpu", data=mnist)
    t.run(steps=GOOD_EVERY - 1)  # the next step's check would take a copy of the "last good" state
    with torch.no_grad():
        next(t.G_ema.parameters()).fill_(float("nan"))  # G_ema enters no loss of the GAN step
    assert t.run(steps=1) is False and "non-finite" in t.message
    assert all(torch.isfinite(p).all() for p in t.G_ema.parameters())
    assert t.step_count == 0  # rewound to the copy before the damage, not to a copy of it
    assert t.run(steps=3) and t.step_count == 3


# ---------------------------------------------------------------------------------------------------- via the app
class _Req:
    def __init__(self, sid):
        self.session_hash = sid


@pytest.fixture
def app(tmp_path):
    pytest.importorskip("gradio")
    from dqngan.ui import build_demo, knobs

    demo = build_demo(checkpoint=None, preset="tiny", device="cpu", max_running=1, save_root=tmp_path / "saved")
    fns = {f.api_name: f.fn for f in demo.fns.values() if getattr(f, "api_name", None)}
    cfg = knobs.preset_config("tiny")
    yield demo, fns, cfg.to_dict(), knobs.values_of(cfg)
    demo.ctx.registry.close()


def _status(fns, sid):
    return fns["poll"](_Req(sid))[0]


def test_nan_in_d_mid_run_pauses_with_a_message_and_step_resumes(app):
    demo, fns, base, vals = app
    assert "running" in fns["train"](_Req("a"), base, *vals)
    run = demo.ctx.registry.session("a").run
    t = run.runner
    wait_for(lambda: t.step_count >= 3, what="a few steps")
    with t._lock:  # between two steps, as a bad update would leave them
        for p in t.trainer.D.parameters():
            p.data.fill_(float("nan"))
    wait_for(lambda: t.status == "paused", what="the auto-pause")
    text = wait_for(lambda: (s := _status(fns, "a")) and "non-finite" in s and "paused" in s and s,
                    what="the poll to show the pause")
    assert "restored the last good weights" in text and "Traceback" not in text
    assert all(torch.isfinite(p).all() for m in t.trainer.modules().values() for p in m.parameters())
    step = t.step_count
    assert "stepping 3" in fns["step"](_Req("a"), 3, base, *vals)
    wait_for(lambda: t.status == "paused" and t.step_count == step + 3, what="3 more steps")
    assert all(torch.isfinite(p).all() for p in t.trainer.D.parameters())
    assert math.isfinite(t.history.last("d_loss"))


def test_exception_in_training_thread_is_shown_and_the_app_keeps_serving(app, monkeypatch):
    demo, fns, base, vals = app
    assert "running" in fns["train"](_Req("a"), base, *vals)
    run = demo.ctx.registry.session("a").run
    t = run.runner
    wait_for(lambda: t.step_count >= 2, what="a few steps")

    def boom(part="joint"):  # train_step's signature: the thread passes the step mode
        raise RuntimeError("injected fault in train_step")

    monkeypatch.setattr(t.trainer, "train_step", boom)
    wait_for(lambda: t.status == "error", what="the error status")
    text = wait_for(lambda: (s := _status(fns, "a")) and "injected fault" in s and s, what="the error in the poll")
    assert "error" in text and "RuntimeError: injected fault in train_step" in text and "Traceback" not in text
    # the app keeps serving: another visitor polls, explores and trains (the errored run holds no slot) ...
    assert "shared model" in _status(fns, "b")
    out = fns["explore_seed"](3, "none", _Req("b")) if "explore_seed" in fns else None
    assert out is None or "Φ =" in out[2]
    assert "stepping 2" in fns["step"](_Req("b"), 2, base, *vals)
    other = demo.ctx.registry.session("b").run
    wait_for(lambda: other.runner.status == "paused" and other.runner.step_count == 2, what="b's steps")
    # ... and the broken run trains again once the fault is gone
    monkeypatch.undo()
    step = t.step_count
    assert "stepping 2" in fns["step"](_Req("a"), 2, base, *vals)
    wait_for(lambda: t.status == "paused" and t.step_count == step + 2, what="a's steps after the fault")
    assert t.error is None
