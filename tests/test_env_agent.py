import pytest
import torch

from dqngan.agent import DQNAgent, linear_epsilon
from dqngan.directions import action_labels, action_moves, compute_directions
from dqngan.env import LatentEnv, Potential, observe, state_dim
from dqngan.models import Discriminator, Generator, dcgan_init, frozen_copy
from dqngan.replay import ReplayBuffer


def _models(z_dim=16):
    torch.manual_seed(0)
    g, d = Generator(z_dim, 0.125), Discriminator(0.125)
    dcgan_init(g)
    dcgan_init(d)
    return frozen_copy(g), frozen_copy(d)


def test_directions_are_unit_and_sefa_orthonormal():
    g, _ = _models()
    gen = torch.Generator().manual_seed(0)
    for kind in ("sefa", "pca", "random", "axis"):
        dirs = compute_directions(kind, g, 4, gen)
        assert dirs.shape == (4, 16)
        assert torch.allclose(dirs.norm(dim=1), torch.ones(4), atol=1e-5)
    s = compute_directions("sefa", g, 4, gen)
    assert torch.allclose(s @ s.T, torch.eye(4), atol=1e-5)
    assert action_labels(2) == ["stop", "+d1", "-d1", "+d2", "-d2"]
    moves = action_moves(torch.tensor([0, 1, 2, 3]), s[:2], 0.5)
    assert torch.equal(moves[0], torch.zeros(16))
    assert torch.allclose(moves[1], 0.5 * s[0]) and torch.allclose(moves[2], -0.5 * s[0])


def test_rewards_telescope_to_potential_difference():
    g, d = _models()
    gen = torch.Generator().manual_seed(1)
    pot = Potential(g, d, lam=0.3)
    dirs = compute_directions("sefa", g, 4, gen)
    env = LatentEnv(pot, dirs, delta=0.5, horizon=5, n=6, gen=gen)
    z0, phi0 = env.z.clone(), pot(env.z, env.goal)
    total = torch.zeros(6)
    ended = torch.zeros(6, dtype=torch.bool)
    final_z = torch.zeros_like(z0)
    for _ in range(5):
        a = torch.randint(1, 9, (6,), generator=gen)  # moves only, so every episode lasts T steps
        tr, r, _, _ = env.step(a)
        total += r
        final_z = tr.z_next
        ended |= tr.done
    assert ended.all()
    expected = pot(final_z, torch.full((6,), -1)) - phi0
    assert torch.allclose(total, expected, atol=1e-4)
    assert not torch.allclose(final_z, z0)


def test_stop_ends_episode_with_zero_reward_and_one_forward_per_step():
    g, d = _models()
    calls = {"g": 0, "d": 0}
    g.register_forward_hook(lambda *a: calls.__setitem__("g", calls["g"] + 1))
    d.body.register_forward_hook(lambda *a: calls.__setitem__("d", calls["d"] + 1))
    gen = torch.Generator().manual_seed(2)
    env = LatentEnv(Potential(g, d, lam=1.0), compute_directions("axis", g, 3, gen), 0.5, 4, n=5, gen=gen)
    calls.update(g=0, d=0)
    a = torch.tensor([0, 1, 0, 2, 3])
    _, have = env.sample_final(3, gen)
    assert not have  # no episode has ended yet: D gets plain fakes in the refined slots
    ret_before = env.ret.clone()
    tr, r, ended_sum, n_ended = env.step(a)
    assert calls == {"g": 1, "d": 1}  # one batched G and D forward for all envs, resets included
    assert torch.equal(tr.done, a == 0)
    assert torch.all(r[a == 0] == 0) and int(n_ended) == 2
    assert torch.isclose(ended_sum, (ret_before + r)[a == 0].sum())
    assert torch.equal(env.t, torch.tensor([0, 1, 0, 1, 1]))
    assert torch.all(env.ret[a == 0] == 0)  # restarted episodes start a fresh return
    final, have = env.sample_final(50, gen)
    assert have and final.shape == (50, 16)
    ended = tr.z_next[a == 0]  # only the two stopped episodes' final z's can be drawn
    assert all(any(torch.equal(f, e) for e in ended) for f in final)


def test_observation_layout():
    z = torch.randn(2, 16)
    obs = observe(z, torch.tensor([0, 2]), torch.tensor([-1, 3]), horizon=4)
    assert obs.shape == (2, state_dim(16))
    assert obs[1, 16] == 0.5 and obs[1, 17 + 3] == 1 and obs[0, 17:].sum() == 0


def test_double_dqn_target_uses_online_argmax_and_target_values():
    torch.manual_seed(0)
    agent = DQNAgent(state_dim=4, n_actions=3, hidden=8, lr=1e-3, gamma=0.9, tau=0.5, grad_clip=10,
                     device=torch.device("cpu"))
    for p in agent.q_target.parameters():  # make the target net differ from the online net
        p.data.normal_()
    s2 = torch.randn(64, 4)
    r = torch.randn(64)
    done = torch.zeros(64, dtype=torch.bool)
    done[:10] = True
    y = agent.target(r, s2, done)
    a_star = agent.q(s2).argmax(1)
    q_t = agent.q_target(s2)
    want = r + 0.9 * (~done).float() * q_t.gather(1, a_star[:, None]).squeeze(1)
    assert torch.allclose(y, want)
    vanilla = r + 0.9 * (~done).float() * q_t.max(1).values
    assert not torch.allclose(y, vanilla)  # it is not the max of the target network
    assert torch.equal(y[:10], r[:10])


def test_update_lowers_td_loss_and_sync_is_polyak():
    torch.manual_seed(0)
    agent = DQNAgent(4, 3, 32, lr=1e-2, gamma=0.0, tau=0.5, grad_clip=1.0, device=torch.device("cpu"))
    s, a, r = torch.randn(128, 4), torch.randint(0, 3, (128,)), torch.randn(128)
    done = torch.ones(128, dtype=torch.bool)
    first = agent.update(s, a, r, s, done)
    for _ in range(200):
        last = agent.update(s, a, r, s, done)
    assert last < first
    p, pt = next(agent.q.parameters()), next(agent.q_target.parameters())
    before = pt.clone()
    agent.sync()
    assert torch.allclose(pt, 0.5 * before + 0.5 * p)


def test_epsilon_greedy():
    agent = DQNAgent(4, 5, 8, 1e-3, 0.9, 0.01, 10, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(2000, 4)
    greedy = agent.q(obs).argmax(1)
    assert torch.equal(agent.act(obs, 0.0, gen), greedy)
    random = agent.act(obs, 1.0, gen)
    counts = torch.bincount(random, minlength=5).float() / 2000
    assert torch.all((counts > 0.15) & (counts < 0.25))
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(500, 1.0, 0.1, 100) == pytest.approx(0.1)


def test_replay_wraps_and_relabels_with_the_current_reward_model(make_trainer):
    buf = ReplayBuffer(10, 16, torch.device("cpu"))
    from dqngan.env import Transition
    for i in range(3):
        n = 4
        buf.add(Transition(torch.full((n, 16), float(i)), torch.ones(n, dtype=torch.long), torch.zeros(n, 16),
                           torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                           torch.full((n,), -1)))
    assert len(buf) == 10 and buf.pos == 2 and int(buf.size_t) == 10
    assert set(buf.data["z"][:, 0].tolist()) == {0.0, 1.0, 2.0} and buf.data["z"][0, 0] == 2.0

    t = make_trainer()
    t.run(steps=8)
    b = t.replay.sample(32, t.gen)
    r1 = t.env.relabel(b.z, b.action, b.z_next, b.t, b.goal)[1]
    phi = t.potential(torch.cat([b.z, b.z_next]), torch.cat([b.goal, b.goal]))
    assert torch.allclose(r1[b.action != 0], (phi[32:] - phi[:32])[b.action != 0])
    assert torch.all(r1[b.action == 0] == 0)
    with torch.no_grad():  # the reward model moves: stored transitions must be re-scored, not replayed stale
        for p in t.D_bar.parameters():
            p.add_(0.5 * torch.randn_like(p))
    r2 = t.env.relabel(b.z, b.action, b.z_next, b.t, b.goal)[1]
    phi2 = t.potential(torch.cat([b.z, b.z_next]), torch.cat([b.goal, b.goal]))
    moved = b.action != 0
    assert not torch.allclose(r1[moved], r2[moved])
    assert torch.allclose(r2[moved], (phi2[32:] - phi2[:32])[moved])
