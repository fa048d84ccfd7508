"""Counting host read-backs: the operations that make the host wait for the device (on a GPU, each one drains the
queue, so the GPU idles while Python launches the next kernels).

`ReadbackCounter` is a TorchDispatchMode that counts, outside `optimizer.step()` (whose non-capturable Adam reads
its step counters by design):
- `aten._local_scalar_dense`: `.item()`, `float(t)`, `bool(t)`, `int(t)`;
- `aten.nonzero` and `aten.masked_select`, and `index` / `index_put_` with a boolean mask (data-dependent shapes);
- copies between devices (`_to_copy` / `copy_` from CPU to an accelerator or back);
- explicit reads through `to_host` (`Tensor.tolist()` on a CPU tensor reaches no operator, so the engine's one
  periodic read goes through `to_host` to be seen).
With `strict=True` the first one raises `ReadbackError` naming the op: a test can run a step under it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

_active: list[ReadbackCounter] = []
_in_optimizer = threading.local()


class ReadbackError(RuntimeError):
    """A host read-back happened where none is allowed."""


def _pre_hook(*_: Any) -> None:
    _in_optimizer.depth = getattr(_in_optimizer, "depth", 0) + 1


def _post_hook(*_: Any) -> None:
    _in_optimizer.depth -= 1


def to_host(t: torch.Tensor) -> list:
    """`t.tolist()`, counted as one read-back by any active counter."""
    for c in _active:
        c.note("to_host")
    return t.tolist()


def _device_of(x: Any) -> torch.device | None:
    return x.device if isinstance(x, torch.Tensor) else None


class ReadbackCounter(TorchDispatchMode):
    def __init__(self, strict: bool = False):
        super().__init__()
        self.strict = strict
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def note(self, what: str) -> None:
        if getattr(_in_optimizer, "depth", 0):
            return
        if self.strict:
            raise ReadbackError(f"host read-back in the step: {what}")
        self.counts[what] += 1

    def __enter__(self) -> ReadbackCounter:
        self._hooks = (register_optimizer_step_pre_hook(_pre_hook),
                       register_optimizer_step_post_hook(_post_hook))
        _active.append(self)
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        _active.remove(self)
        for h in self._hooks:
            h.remove()
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in ("_local_scalar_dense", "nonzero", "masked_select"):
            self.note(name)
        elif name in ("index", "index_put", "index_put_") and len(args) > 1:
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ())):
                self.note(f"{name} with a boolean mask")
        elif name == "_to_copy" and args:
            src, dst = _device_of(args[0]), kwargs.get("device")
            if src is not None and dst is not None and torch.device(dst).type != src.type:
                self.note(f"copy {src.type} -> {torch.device(dst).type}")
        elif name == "copy_" and len(args) > 1:
            dst, src = _device_of(args[0]), _device_of(args[1])
            if src is not None and dst is not None and src.type != dst.type:
                self.note(f"copy {src.type} -> {dst.type}")
        return func(*args, **kwargs)
