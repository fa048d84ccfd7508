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
