"""CUDA graphs for the joint step: one macro-step (agent_every GAN iterations + one agent step, with the EMA and
Polyak updates) captured once with `torch.cuda.graph` and replayed with a single launch.

What makes it capturable is the engine itself: the step reads nothing back to the host, draws every random number
from the run's generator (registered with each graph), keeps static shapes and updates its state in place
(`tests/test_trainer.py` checks the first on the CPU). Here we add only what capture needs on top:
- value knobs become device tensors read by the graph, so changing them needs no re-capture: the learning rates
  (Adam with `capturable=True`), epsilon, and the reward weights lambda and beta;
- one graph per flow signature (the config keys that change shapes or control flow, which of the macro's
  iterations step G, whether the agent acts and whether replay is ready), captured after an eager warm-up on a side
  stream; a NaN rewind drops them all;
- the Python counters the captured work advances (agent steps, stored transitions, statistic counts) are advanced
  by hand after each replay, by the difference the capture made.
Logging, grids, FID, direction recomputes and checkpoints run between replays (`Trainer._after`).

If capture fails, training continues eagerly and `trainer.notes` says why.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

VALUE_KEYS = frozenset({"lr_g", "lr_d", "q_lr", "eps_start", "eps_end", "eps_decay", "lam_prior", "beta_goal",
                        "log_every", "grid_every", "fid_every", "step_delay", "history_len"})
MAX_GRAPHS = 4  # captured signatures kept (each holds its own buffers in the shared pool)


class GraphedSteps:
    def __init__(self, trainer: Any):
        self.t = trainer
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, Any], int]] = {}
        self.failed: str | None = None
        self.replays = 0
        self._pool = None
        self._tensorised = False

    # ------------------------------------------------------------------------------------------------ when
    def signature(self) -> tuple | None:
        """What a captured macro-step depends on besides tensor values; None when the next steps are not a macro."""
        t, c = self.t, self.t.cfg
        step, m = t.step_count, t.macro_length()
        active = t._agent_active(step)
        if active and step % c.agent_every:
            return None  # not at an agent step: eager steps until the next one
        if not active and c.agent_every and step + m > c.agent_start:
            return None  # the agent starts inside these steps
        g_turns = tuple(bool(c.g_every) and (step + i) % c.g_every == 0 for i in range(m))
        ready = active and len(t.replay) + c.n_envs >= max(c.learning_starts, c.q_batch)
        flow = tuple(sorted((k, v) for k, v in c.to_dict().items() if k not in VALUE_KEYS))
        return (m, g_turns, active, ready, c.beta_goal > 0, flow)

    def ready(self, max_steps: int | None) -> bool:
        if self.failed is not None:
            return False
        sig = self.signature()
        return sig is not None and (max_steps is None or sig[0] <= max_steps)

    def invalidate(self) -> None:
        self.graphs.clear()

    # ------------------------------------------------------------------------------------------------ run
    def run(self) -> bool:
        """One macro-step: replay its graph (capturing it first if new). False if the check after it rewound."""
        t = self.t
        sig = self.signature()
        if sig not in self.graphs:
            try:
                ok, sig = self._capture()
            except Exception as exc:  # any capture problem: keep training eagerly, and say so once
                self.failed = f"CUDA graph capture failed ({type(exc).__name__}: {str(exc)[:200]}); training eagerly"
                t.notes.append(self.failed)
                log.warning(self.failed)
                self.graphs.clear()
                return t.train_step()
            if not ok or sig is None:  # the warm-up's check rewound, or it moved past a macro boundary
                return ok
        graph, delta, m = self.graphs[sig]
        if t._good is None:
            t._capture()
        start = t.step_count
        t._eps_t.fill_(t.epsilon())
        graph.replay()
        after = {**t._host_state()}
        after["agent_steps"] += delta["agent_steps"]
        after["replay_added"] += delta["replay_added"]
        for k, n in delta["counts"].items():
            after["counts"][k] = after["counts"].get(k, 0) + n
        after["last_keys"] = set(delta["last_keys"])
        t._set_host_state(after)
        t.step_count += m
        self.replays += 1
        return t._after(start, t.step_count)

    # ------------------------------------------------------------------------------------------------ capture
    def _tensorise(self) -> None:
        """Value knobs to device tensors, read by the graphs, changed in place by Trainer.set."""
        t, dev = self.t, self.t.device
        for opt in t.optimizers().values():
            for g in opt.param_groups:
                g["lr"] = torch.tensor(float(g["lr"]), device=dev)
                g["capturable"] = True
        t._eps_t = torch.zeros((), device=dev)
        p = t.potential
        p.weights = torch.tensor([p.lam, p.beta], device=dev)
        self._pool = torch.cuda.graph_pool_handle()
        torch.backends.cudnn.benchmark = True
        self._tensorised = True

    def _capture(self) -> tuple[bool, tuple | None]:
        """Warm up, then capture the macro-step at the current signature: (warm-up was fine, signature)."""
        t = self.t
        if not self._tensorised:
            self._tensorise()
        # Warm-up: real (eager) macro-steps on a side stream, so lazily made state (Adam moments, cuDNN plans,
        # statistic buffers) exists before capture, as torch.cuda.graph requires.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            ok = t.macro_step()
        torch.cuda.current_stream().wait_stream(side)
        sig = self.signature()
        if not ok or sig is None:
            return ok, None
        if len(self.graphs) >= MAX_GRAPHS:
            self.graphs.pop(next(iter(self.graphs)))
        before = t._host_state()
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(t.gen)
        try:
            t._last_keys = set()
            with torch.cuda.graph(graph, pool=self._pool):
                t.macro_body(t._eps_t)  # recorded, not run: the Python side effects are undone below
            after = t._host_state()
        finally:
            t._set_host_state(before)
        delta = {"agent_steps": after["agent_steps"] - before["agent_steps"],
                 "replay_added": after["replay_added"] - before["replay_added"],
                 "counts": {k: n - before["counts"].get(k, 0) for k, n in after["counts"].items()},
                 "last_keys": after["last_keys"]}
        self.graphs[sig] = (graph, delta, sig[0])
        return True, sig
