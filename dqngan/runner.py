"""A Trainer in a background thread, for the app: commands, live knobs, snapshots and fair, locked model access.

The training thread runs `trainer.train_step()` under the model lock. Everything else goes through this class:
`start / pause / resume / step(n, part) / stop / wait`, `set(**knobs)`, `snapshot()` (a copy published by the
training thread, so a poll never waits for a step) and the locked reads (`generate`, `refine`, `q_values`, `score`,
`directions`, `generator_copy`, `save`). Python locks are not fair, so `model_access` makes the loop let waiting
callers in between two steps: a Save click or an explorer call is never starved by a busy run.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError
from .trainer import PARTS, Trainer


class Runner:
    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self._lock = threading.RLock()  # the models: held by the loop for one step, or by a model_access caller
        self._cv = threading.Condition()  # the control state below
        self._pub_lock = threading.Lock()  # the published snapshot parts: never held during a step
        self._thread: threading.Thread | None = None
        self._status = "idle"
        self._budget: int | None = None
        self._part = "joint"  # what the thread's steps train (step(n, part)); start() trains everything
        self._stop = False
        self._busy = False  # a step is in flight in the thread
        self._waiting = 0  # other threads waiting for the models: the training loop lets them in between steps
        self.error: str | None = None
        self.error_trace: str | None = None
        self._version = 0
        self._rate = 0.0
        self._published_record = -1
        self._published_cfg: Any = None
        self._pub: dict[str, Any] = {}
        self._publish()

    # ------------------------------------------------------------------------------------------------ what it runs
    @property
    def cfg(self) -> Any:
        return self.trainer.cfg

    @property
    def device(self) -> torch.device:
        return self.trainer.device

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    @property
    def agent_steps(self) -> int:
        return self.trainer.agent_steps

    @property
    def elapsed(self) -> float:
        return self.trainer.elapsed

    @property
    def history(self) -> Any:
        return self.trainer.history

    @property
    def fixed_z(self) -> torch.Tensor:
        return self.trainer.fixed_z

    @property
    def message(self) -> str | None:
        return self.trainer.message

    @property
    def status(self) -> str:
        return self._status

    @property
    def reward_classifier(self) -> torch.nn.Module | None:
        """The frozen classifier behind the goal reward (never trained, so safe to use concurrently)."""
        return self.trainer.reward_classifier

    # ------------------------------------------------------------------------------------------------ model access
    @contextlib.contextmanager
    def model_access(self) -> Iterator[Trainer]:
        """Exclusive use of the trainer between two training steps."""
        with self._cv:
            self._waiting += 1
        try:
            with self._lock:
                yield self.trainer
        finally:
            with self._cv:
                self._waiting -= 1
                self._cv.notify_all()

    def generate(self, z: torch.Tensor, refine: bool = False, goal: torch.Tensor | None = None) -> torch.Tensor:
        with self.model_access() as t:
            return t.generate(z, refine, goal)

    def refine(self, z: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with self.model_access() as t:
            return t.refine(z, goal, steps)

    def q_values(self, z: torch.Tensor, t: int = 0, goal: int | None = None) -> torch.Tensor:
        with self.model_access() as tr:
            return tr.q_values(z, t, goal)

    def score(self, z: torch.Tensor, goal: int | None = None) -> torch.Tensor:
        with self.model_access() as t:
            return t.score(z, goal)

    def directions(self) -> torch.Tensor:
        with self.model_access() as t:
            return t.directions()

    def fid(self, n: int | None = None) -> float | None:
        with self.model_access() as t:
            return t.fid(n)

    def generator_copy(self) -> torch.nn.Module:
        """A private eval-mode copy of G_ema (training updates the original in place)."""
        with self.model_access() as t:
            return copy.deepcopy(t.G_ema).eval()

    def save(self, path: str | Path, include_replay: bool = True) -> Path:
        """Write a checkpoint between two steps (see checkpoint.save_checkpoint)."""
        from .checkpoint import save_checkpoint

        with self.model_access() as t:
            return save_checkpoint(t, path, include_replay=include_replay)

    def clear_history(self) -> None:
        """Start the charts afresh (a lesson that starts from a trained GAN plots only its own steps)."""
        from .history import History

        with self.model_access() as t:
            t.history = History(t.cfg.history_len)
            t.record_version += 1
        self._publish()

    def set(self, **knobs: Any) -> None:
        """Change live knobs (config.LIVE_KEYS) between steps; anything else raises ConfigError."""
        with self.model_access() as t:
            t.set(**knobs)
        with self._cv:
            self._version += 1
        self._publish()

    # ------------------------------------------------------------------------------------------------ commands
    def start(self) -> None:
        """Train in the background thread until paused or stopped."""
        self._command("running", None)

    resume = start

    def step(self, n: int = 1, part: str = "joint") -> None:
        """Train exactly n more steps in the background thread, then pause. `part`: see Trainer.train_step."""
        if n < 1:
            raise ValueError("step(n) needs n >= 1")
        if part not in PARTS:
            raise ValueError(f"unknown step part {part!r}; choose from {', '.join(PARTS)}")
        if part == "g" and self.cfg.g_every == 0:  # refused here, before the thread would stop on it
            raise ConfigError("G is frozen in this run (train G is off): tick train G to step it")
        self._command("running", n, part)

    def pause(self) -> None:
        with self._cv:
            if self._status == "running":
                self._status, self._budget = "paused", None
                self._version += 1
                self._cv.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cv:
            if self._status != "error":
                self._status = "stopped"
            self._version += 1

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the thread is idle: not running and no step in flight. True if it got there in time."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._status == "running" or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _command(self, status: str, budget: int | None, part: str = "joint") -> None:
        with self._cv:
            self._status, self._budget, self._stop, self._part = status, budget, False, part
            self.error = self.error_trace = None
            self._version += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="dqngan-trainer", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    # ------------------------------------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        try:
            while True:
                with self._cv:
                    while self._status != "running" and not self._stop:
                        self._cv.wait()
                    if self._stop:  # "stopped" before the thread ends: whoever sees it gone sees it stopped
                        if self._status != "error":
                            self._status = "stopped"
                        self._version += 1
                        return
                    while self._waiting and not self._stop:  # let waiting callers in first
                        self._cv.wait(0.5)
                    self._busy = True
                    budget = self._budget
                try:
                    ok, n = self._one_step(budget)
                finally:
                    with self._cv:
                        self._busy = False
                with self._cv:
                    if not ok:
                        self._status, self._budget = "paused", None
                    elif self._budget is not None:
                        self._budget -= n
                        if self._budget <= 0:
                            self._status, self._budget = "paused", None
                    self._version += 1
                    self._cv.notify_all()
                    if self.cfg.step_delay > 0 and self._status == "running":
                        self._cv.wait(self.cfg.step_delay)  # slow speed; a pause or stop wakes it at once
        except Exception as exc:  # reported in the snapshot, never swallowed
            with self._cv:
                self.error = f"{type(exc).__name__}: {exc}"
                self.error_trace = traceback.format_exc()
                self._status = "error"
                self._version += 1
                self._cv.notify_all()

    def _one_step(self, budget: int | None) -> tuple[bool, int]:
        """The next unit of training (a graphed macro-step on CUDA, else one step); at the end of a Step click's
        budget, that step's values are read back (the narrated step shows them) and checked."""
        with self._lock:
            t0 = time.perf_counter()
            if self._part == "joint" and self.cfg.step_delay == 0:  # the slow speed shows every single step
                ok, n = self.trainer.advance(budget)
            else:
                ok, n = self.trainer.train_step(self._part), 1
            if ok and budget is not None and n >= budget:
                ok = self.trainer.check()
            # the slow speed waits step_delay after each step: steps/s is what the run really makes
            rate = max(n, 1) / (time.perf_counter() - t0 + self.cfg.step_delay)
            self._rate = rate if self._rate == 0 else 0.95 * self._rate + 0.05 * rate
            self._publish()
        return ok, n

    def _publish(self) -> None:
        """Copy what snapshots show; the history and grids only when the trainer recorded new points."""
        t = self.trainer
        pub = {"step": t.step_count, "agent_steps": t.agent_steps, "steps_per_s": self._rate, "elapsed": t.elapsed,
               "last_stats": dict(t.last_stats), "message": t.message}
        if t.cfg is not self._published_cfg:  # set() replaces the config object: no dict copy on every step
            pub["config"], self._published_cfg = t.cfg.to_dict(), t.cfg
        if t.record_version != self._published_record:
            pub["history"], pub["grids"] = t.history.to_dict(), list(t.grids)
            self._published_record = t.record_version
        with self._pub_lock:
            self._pub.update(pub)

    def snapshot(self) -> dict[str, Any]:
        """A consistent, copy-on-read view for other threads (the app's poll). `version` changes on every update."""
        with self._cv:
            status, error, trace, version = self._status, self.error, self.error_trace, self._version
        with self._pub_lock:  # never the model lock: a poll must not wait for a training step
            pub = dict(self._pub)
        t = self.trainer
        return {"version": version, "status": status, "error": error, "error_trace": trace,
                "device": str(t.device), "action_labels": list(t.labels), **pub}
