import torch

from dqngan.models import Discriminator, Generator, QNetwork, dcgan_init, frozen_copy, polyak_update


def test_generator_and_discriminator_shapes():
    for width in (0.125, 0.25, 1.0):
        g, d = Generator(100, width), Discriminator(width)
        dcgan_init(g)
        dcgan_init(d)
        x = g(torch.randn(5, 100))
        assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        out = d(x)
        assert out.shape == (5,) and out.dtype == torch.float32
    # width scales the parameter count roughly quadratically
    n = [sum(p.numel() for p in Generator(100, w).parameters()) for w in (0.25, 1.0)]
    assert 6 < n[1] / n[0] < 16


def test_discriminator_without_norm_and_q_network():
    d = Discriminator(0.25, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    q = QNetwork(111, 17, 32)
    assert q(torch.randn(3, 111)).shape == (3, 17)


def test_dcgan_init_statistics():
    g = Generator(100, 1.0)
    dcgan_init(g)
    w = g.net[3].weight
    assert abs(w.std().item() - 0.02) < 0.002
    bn = g.net[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01


def test_polyak_update_moves_params_and_buffers():
    src = Generator(8, 0.125)
    tgt = frozen_copy(src)
    assert not any(p.requires_grad for p in tgt.parameters())
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
        src.net[1].running_mean.add_(2.0)
    before = next(tgt.parameters()).clone()
    polyak_update(tgt, src, 0.25)
    after = next(tgt.parameters())
    assert torch.allclose(after, before + 0.25)
    assert torch.allclose(tgt.net[1].running_mean, torch.full_like(tgt.net[1].running_mean, 0.5))
