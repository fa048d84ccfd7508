"""Training on several processes, GPUs or machines with torchrun and plain torch.distributed (gloo on CPU, NCCL on
CUDA), without DistributedDataParallel.

GANs trip over DDP (two D forwards before one backward with BatchNorm, unused parameters in the G phase, the
gradient penalty's double backward), so this follows the pattern of NVlabs' StyleGAN training loop instead: the
parameters are broadcast from rank 0 once, and after each optimizer phase's backward the gradients are averaged
across ranks explicitly, in one flat buffer. Every rank then takes the same Adam step and the models stay identical,
while data order, noise, episodes and replay stay per rank (rank-derived random streams). BatchNorm running
statistics are averaged after each step (riding in the all-reduce of its last phase's gradients), so G_ema and
D-bar (the reward) are identical everywhere too.

`torchrun --standalone --nproc-per-node=N -m dqngan train ...` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR
/ MASTER_PORT; `from_env` reads them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .device import pick_device

TIMEOUT_S = float(os.environ.get("DQNGAN_DIST_TIMEOUT", "120"))  # a collective waits this long for a lost rank
SEED_STRIDE = 1_000_003  # rank r draws from seed + r * SEED_STRIDE: independent streams, reproducible per rank


class DistError(RuntimeError):
    """The distributed set-up cannot start or another rank stopped (one-line message)."""


@dataclass
class Dist:
    rank: int
    world: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    @torch.no_grad()
    def sync_grads(self, params: list[torch.Tensor], also: Sequence[torch.Tensor] = ()) -> None:
        """Average the gradients of `params`, and the float tensors `also` (BatchNorm running statistics) in place,
        across ranks: one all-reduce of one flat buffer. On a CPU every collective costs a round trip, and each one
        makes the faster rank wait for the slower, so the statistics ride along with the last phase's gradients."""
        params = [p for p in params if p.requires_grad]
        also = [t for t in also if t.dtype.is_floating_point]
        if not params and not also:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([t.reshape(-1) for t in (*grads, *also)])
        dist.all_reduce(flat)
        flat.div_(self.world)
        parts = flat.split([t.numel() for t in (*params, *also)])
        for p, f in zip(params, parts):
            p.grad = f.view_as(p)
        if also:
            torch._foreach_copy_(also, [f.view_as(t) for t, f in zip(also, parts[len(params):])])

    @torch.no_grad()
    def broadcast(self, tensors: list[torch.Tensor], src: int = 0) -> None:
        for t in tensors:
            dist.broadcast(t, src)

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when `flag` is true on every rank (e.g. all statistics finite)."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def any_of(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag, true on every rank when it is true on any rank (one all-reduce for all of them)."""
        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise DistError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole number") from None


def from_env(device: str = "auto") -> tuple[Dist | None, torch.device]:
    """(the process group, this rank's device) when launched by torchrun with WORLD_SIZE > 1, else (None, device)."""
    world = world_size()
    dev = pick_device(device)
    if world <= 1:
        return None, dev
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise DistError("WORLD_SIZE > 1 needs RANK (and LOCAL_RANK): launch with torchrun") from None
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise DistError(f"WORLD_SIZE > 1 needs {key}: launch with torchrun (e.g. --standalone)")
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s) here: use "
                            f"--nproc-per-node <= {torch.cuda.device_count()}")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_available() or not (dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()):
        raise DistError(f"this torch build has no {backend} backend for distributed training on {dev.type}")
    try:
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=TIMEOUT_S))
    except (RuntimeError, ValueError) as e:
        raise DistError(f"could not join the process group ({str(e).splitlines()[0][:200]})") from None
    return Dist(rank, world, backend), dev
