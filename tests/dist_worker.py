"""Run by tests/test_distributed.py under torchrun (2 gloo processes): real ranks, real all-reduces.

`python -m torch.distributed.run --standalone --nproc-per-node=2 tests/dist_worker.py OUT.json` trains a tiny run on
every rank and checks, on rank 0, that the models are identical across ranks while the episodes are not, and that
one averaged D gradient equals the single-process gradient of the two ranks' batches put together."""

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dqngan import losses  # noqa: E402
from dqngan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from dqngan.config import make_config  # noqa: E402
from dqngan.data import load_dataset  # noqa: E402
from dqngan.distributed import from_env  # noqa: E402
from dqngan.trainer import Trainer  # noqa: E402


def flat(modules) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for m in modules for t in (*m.parameters(), *m.buffers())])


def gathered(x: torch.Tensor, world: int) -> list[torch.Tensor]:
    out = [torch.zeros_like(x) for _ in range(world)]
    dist.all_gather(out, x)
    return out


def main(out: str) -> None:
    torch.set_num_threads(1)
    d, dev = from_env("cpu")
    data = load_dataset("mnist5k")
    result: dict = {"world": d.world}
    # 1. a real joint run (BatchNorm, agent, refined fakes): every rank ends with the same models
    t = Trainer(make_config("tiny", {"grid_every": 1000}), dev, data=data, dist=d)
    assert t.run(steps=12)
    models = gathered(flat(t.modules().values()), d.world)
    episodes = gathered(t.env.z.flatten().clone(), d.world)
    result["models_identical"] = all(torch.equal(models[0], m) for m in models[1:])
    result["episodes_differ"] = not torch.equal(episodes[0], episodes[1])
    result["steps"] = t.step_count
    # 1b. the BatchNorm statistics ride in the last phase's all-reduce: D's when G skips a turn (g_every=2, two D
    # updates per step) and in the step modes, G's otherwise; each path must leave the ranks identical
    s = Trainer(make_config("tiny", {"grid_every": 1000, "n_critic": 2, "g_every": 2}), dev, data=data, dist=d)
    assert s.run(steps=5)
    for part in ("d", "g", "agent", "d"):
        s.train_step(part)
    models = gathered(flat(s.modules().values()), d.world)
    result["models_identical_step_modes"] = all(torch.equal(models[0], m) for m in models[1:])
    # 2. one averaged gradient = the gradient of the union batch in one process (no BatchNorm: d_norm none)
    u = Trainer(make_config("tiny", {"d_norm": "none", "loss": "hinge"}), dev, data=data, dist=d)
    real, z = u.sampler.next(16), u._randn(16)
    with torch.no_grad():
        fake = u.G(z)
    single = copy.deepcopy(u.D)  # the same (broadcast) weights, outside the process group
    loss = losses.d_loss("hinge", u.D(real), u.D(fake))
    u.D.zero_grad()
    loss.backward()
    d.sync_grads(list(u.D.parameters()))
    averaged = torch.cat([p.grad.flatten() for p in u.D.parameters()])
    reals, fakes = gathered(real, d.world), gathered(fake, d.world)
    # mean over ranks of per-rank means = the mean over the union for equal batch sizes (hinge is a mean of terms)
    loss_u = losses.d_loss("hinge", single(torch.cat(reals)), single(torch.cat(fakes)))
    single.zero_grad()
    loss_u.backward()
    union = torch.cat([p.grad.flatten() for p in single.parameters()])
    result["grad_max_abs_diff"] = float((averaged - union).abs().max())
    result["grad_norm"] = float(union.norm())
    # 3. checkpoints: save at step 6 (rank 1 adds its own state), go on to 10; a resume of the step-6 checkpoint
    # (the CLI's load path) reaches the very same state at step 10 on every rank
    ck = Path(out).with_name("ck")
    a = Trainer(make_config("tiny", {"grid_every": 1000}), dev, data=data, dist=d)
    assert a.run(steps=6)
    save_checkpoint(a, ck)
    assert a.run(steps=4)
    b = load_checkpoint(ck, device=dev, data=data, dist=d)
    assert b.run(steps=4)
    sa, sb = a.state_dict(), b.state_dict()
    same = all(torch.equal(x[k], y[k]) for x, y in zip(sa[:2], sb[:2]) for k in x)
    ra, rb = a.rank_state(), b.rank_state()
    same_rank = all(torch.equal(ra[k], rb[k]) for k in ra)
    result["resume_exact_all_ranks"] = all(gathered(torch.tensor([float(same and same_rank)]), d.world)[i].item()
                                           == 1.0 for i in range(d.world))
    if d.main:
        Path(out).write_text(json.dumps(result))
    d.close()


if __name__ == "__main__":
    main(sys.argv[1])
