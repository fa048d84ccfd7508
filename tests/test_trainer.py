import math
import time

import pytest
import torch

from dqngan.config import ConfigError


@pytest.mark.parametrize("overrides", [
    {"loss": "ns"},
    {"loss": "hinge"},
    {"loss": "wgan-gp", "d_norm": "none", "n_critic": 5},
])
def test_each_loss_trains_without_nan(make_trainer, overrides):
    t = make_trainer(**overrides)
    g0 = [p.clone() for p in t.G.parameters()]
    assert t.run(steps=6)
    h = t.history
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert all(math.isfinite(v) for v in h.series[name].values), name
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert t.step_count == 6


def test_joint_loop_feeds_agent_and_refined_fakes(make_trainer):
    t = make_trainer(refined_frac=0.5)
    t.run(steps=30)
    h = t.history
    assert t.agent_steps == 30 and len(t.replay) == 30 * t.cfg.n_envs
    assert "td_loss" in h.series and "d_refined" in h.series and "episode_return" in h.series
    q = h.series["q_probe"].values[-1]
    assert len(q) == 2 * t.cfg.n_dirs + 1
    eps = h.series["epsilon"].values
    assert eps[-1] < eps[0]
    step, raw, refined = t.grids[-1]
    assert raw.shape == (64, 28, 28) and raw.dtype.name == "uint8" and refined.shape == raw.shape


def test_thread_start_pause_resume_step_stop(make_trainer):
    t = make_trainer()
    t.step(5)
    assert t.wait(60) and t.status == "paused" and t.step_count == 5
    t.start()
    deadline = time.monotonic() + 60
    while t.step_count < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    t.pause()
    assert t.wait(30) and t.status == "paused"
    s = t.step_count
    time.sleep(0.3)
    assert t.step_count == s  # paused means paused
    t.set(lr_g=1e-4, eps_end=0.2, lam_prior=0.5)  # live knobs
    assert t.opt_g.param_groups[0]["lr"] == 1e-4 and t.potential.lam == 0.5
    with pytest.raises(ConfigError, match="cannot change during a run"):
        t.set(width=1.0)
    t.resume()
    while t.step_count < s + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    t.stop()
    assert t.status == "stopped" and t.step_count >= s + 3
    snap = t.snapshot()
    assert snap["status"] == "stopped" and snap["config"]["lr_g"] == 1e-4


def test_snapshot_history_is_bounded_and_spans_the_run(make_trainer):
    t = make_trainer(history_len=16, log_every=1, grid_every=1)
    t.run(steps=200)
    snap = t.snapshot()
    for name, series in snap["history"].items():
        assert len(series["step"]) <= 16, name
    d = snap["history"]["d_loss"]["step"]
    assert d[0] <= 16 and d[-1] >= 180  # thinned, not truncated
    assert len(snap["grids"]) <= 121 and snap["grids"][-1][0] == 200
    v = snap["version"]
    t.run(steps=1)
    assert t.snapshot()["version"] > v


def test_exception_in_thread_is_reported(make_trainer):
    t = make_trainer()
    t.run(steps=2)

    def broken(batch_size):
        raise RuntimeError("disk on fire")

    t.sampler.next = broken  # fault injection into the data path
    t.start()
    assert t.wait(30)
    snap = t.snapshot()
    assert snap["status"] == "error"
    assert "RuntimeError: disk on fire" in snap["error"] and "Traceback" in snap["error_trace"]


def test_nan_pauses_and_restores_last_good_weights(make_trainer):
    t = make_trainer()
    t.run(steps=30)
    with torch.no_grad():
        t.D.head.weight.fill_(float("nan"))
    t.start()
    assert t.wait(30)
    snap = t.snapshot()
    assert snap["status"] == "paused" and "non-finite" in snap["message"]
    assert all(torch.isfinite(p).all() for p in t.D.parameters())
    assert t.step_count <= 30
    t.step(3)  # resuming from the restored state works
    assert t.wait(30) and t.status == "paused"
    assert math.isfinite(t.history.last("d_loss"))


def test_generate_and_refine(make_trainer):
    t = make_trainer()
    t.run(steps=10)
    z = torch.randn(6, t.cfg.z_dim)
    a = t.generate(z)
    assert a.shape == (6, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, t.generate(z))
    z_t, actions = t.refine(z)
    assert z_t.shape == z.shape and 1 <= len(actions) <= t.cfg.horizon
    stopped = torch.zeros(6, dtype=torch.bool)
    for act in actions:  # once an episode stops it stays stopped
        assert torch.all(act[stopped] == 0)
        stopped |= act == 0


def test_all_action_targets_and_frozen_generator(make_trainer):
    t = make_trainer(q_targets="all", g_every=0)
    g0 = {k: v.clone() for k, v in t.G.state_dict().items()}
    d0 = [p.clone() for p in t.D.parameters()]
    t.run(steps=12)
    assert all(torch.equal(g0[k], v) for k, v in t.G.state_dict().items())  # G frozen
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))  # D still learns
    assert "g_loss" not in t.history.series and math.isfinite(t.history.last("td_loss"))


def test_all_action_target_matches_per_action_targets(make_trainer):
    """update_all's target for action a equals the sampled-action target for a transition that took a."""
    from dqngan.directions import action_moves
    from dqngan.env import observe

    t = make_trainer(q_targets="all", n_dirs=2)
    t.run(steps=4)
    z = torch.randn(3, t.cfg.z_dim)
    tt, goal = torch.tensor([0, 1, t.cfg.horizon - 1]), torch.full((3,), -1)
    captured = {}
    t.agent.update_all = lambda obs, r, obs_next, done: captured.update(r=r, done=done) or 0.0
    t._update_all_actions(z, tt, goal)
    for a in range(5):
        act = torch.full((3,), a)
        r, _, _ = t.relabel(z, act, z + action_moves(act, t.env.directions, t.cfg.delta), goal)
        assert torch.allclose(captured["r"][:, a], r, atol=1e-5)
    assert captured["done"][:, 0].all() and captured["done"][2].all() and not captured["done"][0, 1:].any()
    del observe


def test_explorer_api_and_snapshot_never_waits_for_the_model_lock(make_trainer):
    import threading

    t = make_trainer()
    t.run(steps=3)
    z = torch.randn(4, t.cfg.z_dim)
    q = t.q_values(z, t=1)
    assert q.shape == (4, 2 * t.cfg.n_dirs + 1)
    assert torch.allclose(t.score(z), t.potential(z, torch.full((4,), -1)))
    d = t.directions()
    assert d.shape == (t.cfg.n_dirs, t.cfg.z_dim)
    d.zero_()  # a copy: the agent's directions are untouched
    assert t.env.directions.abs().sum() > 0
    held, release = threading.Event(), threading.Event()

    def long_step():  # stands in for a slow training step holding the model lock
        with t._lock:
            held.set()
            release.wait(10)

    th = threading.Thread(target=long_step)
    th.start()
    held.wait(5)
    t0 = time.monotonic()
    snap = t.snapshot()
    assert time.monotonic() - t0 < 1.0 and snap["step"] == 3
    release.set()
    th.join()


def _weights(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_step_modes_train_only_their_part(make_trainer):
    """Step D changes D (and D-bar), not G; Step G changes G (and G_ema), not D; Step agent changes Q, not the GAN."""
    t = make_trainer(learning_starts=8)
    t.run(steps=3)
    nets = {"G": t.G, "G_ema": t.G_ema, "D": t.D, "D_bar": t.D_bar, "Q": t.agent.q}

    def changed_by(part):
        before = {k: _weights(m) for k, m in nets.items()}
        step = t.step_count
        stats = t.train_step(part)
        assert t.step_count == step + 1  # every step mode counts, so the charts move
        return {k for k, m in nets.items() if not torch.equal(before[k], _weights(m))}, stats

    moved, stats = changed_by("d")
    assert moved == {"D", "D_bar"} and "d_loss" in stats and "g_loss" not in stats
    moved, stats = changed_by("g")
    assert moved == {"G", "G_ema"} and set(stats) == {"g_loss"}
    moved, stats = changed_by("agent")
    assert moved == {"Q"} and "td_loss" in stats and "d_loss" not in stats
    with pytest.raises(ValueError):
        t.train_step("everything")
    frozen = make_trainer(g_every=0)
    with pytest.raises(ConfigError, match="G is frozen"):
        frozen.step(1, "g")  # refused before the thread starts
    assert frozen.status == "idle"
    frozen.step(2, "d")
    assert frozen.wait(30) and frozen.step_count == 2 and frozen.status == "paused"
