"""The CUDA path (bfloat16 autocast, device placement, checkpoints saved from GPU tensors). Skipped without a GPU."""

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_tiny_run_on_cuda_with_amp_round_trips(mnist, tmp_path):
    from dqngan.checkpoint import load_checkpoint, save_checkpoint
    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    t = Trainer(make_config("tiny", {"amp": True}), device="cuda", data=mnist)
    assert t.run(steps=12)
    assert next(t.G.parameters()).is_cuda and t.env.z.is_cuda
    imgs = t.generate(torch.randn(8, t.cfg.z_dim), refine=True)
    assert imgs.shape == (8, 28, 28) and imgs.dtype == torch.uint8
    ck = save_checkpoint(t, tmp_path / "ck")
    c = load_checkpoint(ck, device="cpu", data=mnist)  # a GPU checkpoint loads on CPU
    assert torch.equal(c.G.net[0].weight, t.G.net[0].weight.cpu())


def _graphed(mnist, **overrides):
    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    cfg = make_config("tiny", {"agent_every": 4, "log_every": 40, "grid_every": 10**6, "dirs_every": 10**6,
                               "learning_starts": 16, **overrides})
    return Trainer(cfg, device="cuda", data=mnist)


def test_graphed_macro_steps_capture_replay_and_stay_live(mnist):
    t = _graphed(mnist)
    assert t.run(steps=80)
    g = t.graphs
    assert g is not None and g.failed is None, t.notes
    assert g.replays > 0 and len(g.graphs) >= 1
    assert all(torch.isfinite(p).all() for m in t.modules().values() for p in m.parameters())
    assert t.history.last("td_loss") is not None
    n = len(g.graphs)
    t.set(lr_g=1e-5, lam_prior=0.7, eps_end=0.3)  # value knobs: no re-capture, the graphs read the new values
    assert float(t.opt_g.param_groups[0]["lr"]) == 1e-5 and float(t.potential.weights[0]) == 0.7
    assert t.run(steps=40) and len(g.graphs) == n


def test_a_replay_makes_no_host_sync(mnist):
    t = _graphed(mnist)
    assert t.run(steps=40)  # captured
    g = t.graphs
    start = g.replays
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):  # no interval boundary in these 20 steps: replays only
            assert g.ready(None) and g.run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert g.replays == start + 5


def test_replays_match_eager_macro_steps(mnist):
    """The graph replays the eager macro-step: the same weights (up to float reordering) from the same seed."""
    a, b = _graphed(mnist, amp=False), _graphed(mnist, amp=False, cuda_graphs=False)
    torch.backends.cudnn.deterministic = True
    try:
        for _ in range(10):  # eager steps until aligned, a warm-up macro-step, then replays
            assert a.advance()[0]
            while b.step_count < a.step_count:
                assert b.train_step()
    finally:
        torch.backends.cudnn.deterministic = False
    assert a.graphs.replays > 0
    for name, m in a.modules().items():
        for pa, pb in zip(m.parameters(), b.modules()[name].parameters()):
            assert torch.allclose(pa, pb, atol=1e-4, rtol=1e-3), name
