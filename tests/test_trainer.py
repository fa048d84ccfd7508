import math

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
    """all_successors' reward, done and next observation for action a equal those of a transition that took a."""
    from dqngan.env import no_goal, successors

    t = make_trainer(q_targets="all", n_dirs=2)
    t.run(steps=4)
    h = t.cfg.horizon
    z, tt, goal = torch.randn(3, t.cfg.z_dim), torch.tensor([0, 1, h - 1]), no_goal(3, "cpu")
    obs, r_all, obs_next, done = t.env.all_successors(z, tt, goal)
    for a in range(5):
        act = torch.full((3,), a)
        z_next, _, done_a = successors(z, tt, act, t.env.table, h)
        obs_a, r, obs_next_a = t.env.relabel(z, act, z_next, tt, goal)
        assert torch.allclose(r_all[:, a], r, atol=1e-5) and torch.equal(done[:, a], done_a)
        assert torch.allclose(obs_next.view(3, 5, -1)[:, a], obs_next_a, atol=1e-5)
        assert torch.allclose(obs, obs_a, atol=1e-5)
    assert done[:, 0].all() and done[2].all() and not done[0, 1:].any()


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
        assert t.train_step(part) and t.check()
        assert t.step_count == step + 1  # every step mode counts, so the charts move
        return {k for k, m in nets.items() if not torch.equal(before[k], _weights(m))}, t.last_stats

    moved, stats = changed_by("d")
    assert moved == {"D", "D_bar"} and "d_loss" in stats and "g_loss" not in stats
    moved, stats = changed_by("g")
    assert moved == {"G", "G_ema"} and set(stats) == {"g_loss"}
    moved, stats = changed_by("agent")
    assert moved == {"Q"} and "td_loss" in stats and "d_loss" not in stats
    with pytest.raises(ValueError):
        t.train_step("everything")
    with pytest.raises(ConfigError, match="G is frozen"):
        make_trainer(g_every=0).train_step("g")


@pytest.mark.parametrize("overrides", [
    {},
    {"q_state": "grad", "refined_frac": 0.5},
    {"beta_goal": 1.0, "q_state": "score"},
    {"loss": "wgan-gp", "d_norm": "none", "n_critic": 2, "q_targets": "all"},
])
def test_the_step_reads_nothing_back_to_the_host(make_trainer, overrides):
    """Between two log intervals a training step makes no host read-back at all (no .item()/float()/bool(), no
    nonzero or boolean-mask indexing, no cross-device copy; optimizer.step() aside): a GPU never waits on Python."""
    from dqngan.readbacks import ReadbackCounter

    t = make_trainer(log_every=100, grid_every=1000, **overrides)
    t.run(steps=20)  # past learning_starts: DQN updates and refined fakes included
    assert len(t.replay) >= t.cfg.learning_starts
    with ReadbackCounter(strict=True):
        for part in ("joint",) * 12 + ("d", "g", "agent"):
            t.train_step(part)


def test_readbacks_per_step_with_default_logging(make_trainer):
    """Averaged over a run with the default log/grid intervals: at most 0.5 per step (the engine v1 made 9.4)."""
    from dqngan.readbacks import ReadbackCounter

    t = make_trainer(log_every=10, grid_every=50)  # grids twice as often as the default, to be strict
    t.run(steps=10)
    with ReadbackCounter() as c:  # (slow: every op passes through Python)
        assert t.run(steps=100)
    assert c.counts["to_host"] == 10  # the one periodic read: statistics, Q probe and the finite check together
    assert c.total / 100 <= 0.5, dict(c.counts)


@pytest.mark.parametrize("overrides", [{}, {"g_every": 2, "q_targets": "all", "beta_goal": 1.0}])
def test_the_graph_ready_macro_step_equals_plain_steps(make_trainer, overrides):
    """What a CUDA graph replays (one macro-step: agent_every GAN iterations + one agent step) gives bit-identical
    weights, optimizer state, replay, env and history to agent_every plain train_step calls from the same seed."""
    from dqngan.readbacks import ReadbackCounter

    cfg = {"agent_every": 4, "log_every": 8, "grid_every": 16, "learning_starts": 16, **overrides}
    plain, macro = make_trainer(**cfg), make_trainer(**cfg)
    for _ in range(6 * 4):
        assert plain.train_step()
    for _ in range(6):
        assert macro.macro_length() == 4
        assert macro.macro_step()
    assert macro.step_count == plain.step_count == 24 and macro.agent_steps == plain.agent_steps == 6
    wa, ta, ma = plain.state_dict()
    wb, tb, mb = macro.state_dict()
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta if k != "rng.gen")
    assert torch.equal(ta["rng.gen"], tb["rng.gen"])  # the same random numbers were drawn
    ma.pop("elapsed"), mb.pop("elapsed")
    assert ma == mb  # counters and the whole history
    with ReadbackCounter(strict=True):  # the body a graph captures reads nothing back
        macro.macro_body(macro.epsilon())
