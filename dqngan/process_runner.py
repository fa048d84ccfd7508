"""A Runner in a child process: the same commands, knobs, snapshots and model reads as `runner.Runner`, over a pipe.

Why: on a CPU a training step is mostly Python, so in one process the app's request handlers (a class of 30 polling)
take the GIL from the training thread, and training ran at 0.67x its alone speed (bench/load_test.py). In a process
of its own it keeps a core to itself. The child builds its trainer from a recipe (a fresh config, or a checkpoint),
wraps it in a thread Runner and serves every public Runner call; calls run concurrently there (each in a thread of a
small pool), so a long one (Save, FID) never holds up a snapshot.

What cannot cross the process boundary: `model_access()` (it would hand out the trainer itself: use the forwarded
reads), and `reward_classifier` (None here: the UI loads the same frozen classifier itself). The pipe is private to
the two processes; user- or Hub-supplied files are still only read by the child's safetensors loader.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
START_TIMEOUT = 120.0  # seconds for the child to import torch and build its trainer


class ProcessEnded(RuntimeError):
    """The training process is gone (killed, out of memory, or stopped)."""


# ================================================================================================ the child
def _build(recipe: dict) -> Any:
    from .checkpoint import load_checkpoint
    from .config import Config
    from .data import load_dataset
    from .runner import Runner
    from .trainer import Trainer

    if recipe["kind"] == "fresh":
        cfg = Config.from_dict(recipe["config"])
        data = load_dataset(cfg.dataset) if recipe.get("with_data", True) else None
        trainer = Trainer(cfg, device=recipe["device"], data=data)
    else:
        data = None
        if recipe.get("with_data"):
            from .checkpoint import read_config
            data = load_dataset(read_config(recipe["path"]).dataset)
        trainer = load_checkpoint(recipe["path"], device=recipe["device"], data=data,
                                  overrides=recipe.get("overrides"), new_agent=recipe.get("new_agent", False))
    return Runner(trainer)


def _portable(value: Any) -> Any:
    """Tensors go back on the CPU (the parent may have no CUDA context)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, tuple):
        return tuple(_portable(v) for v in value)
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, torch.nn.Module):
        return value.cpu()
    return value


def _dumps_error(exc: BaseException) -> bytes:
    try:
        return pickle.dumps(exc)
    except Exception:  # an exception that does not pickle still reaches the parent, readably
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _child_entry(fd: int) -> None:
    """The child process's main (a fresh interpreter: not multiprocessing's spawn, which re-runs the parent's main
    module, app.py included, in the child; not fork, which would copy Gradio's and torch's threads half-held)."""
    conn = Connection(fd)
    _child_main(conn, pickle.loads(conn.recv_bytes()))


def _child_main(conn: Any, recipe: dict) -> None:
    torch.set_num_threads(recipe.get("threads", 1))
    sys.setswitchinterval(recipe.get("switch_interval", 0.005))
    send_lock = threading.Lock()

    def send(msg_id: int, ok: bool, payload: bytes) -> None:
        with send_lock:
            conn.send_bytes(pickle.dumps((msg_id, ok, payload)))

    try:
        runner = _build(recipe)
    except BaseException as exc:  # noqa: BLE001 - a bad recipe is the user's error: the parent raises it
        send(0, False, _dumps_error(exc))
        return
    send(0, True, pickle.dumps({"device": str(runner.device)}))

    def serve(msg_id: int, name: str, args: tuple, kwargs: dict) -> None:
        try:
            attr = getattr(runner, name)
            value = attr(*args, **kwargs) if callable(attr) else attr
            send(msg_id, True, pickle.dumps(_portable(value)))
        except BaseException as exc:  # noqa: BLE001 - every error goes back to the caller
            send(msg_id, False, _dumps_error(exc))

    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="dqngan-rpc")
    try:
        while True:
            try:
                msg_id, name, args, kwargs = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the app is gone: stop training and exit
                break
            if name == "stop":
                serve(msg_id, name, args, kwargs)
                break
            pool.submit(serve, msg_id, name, args, kwargs)
    finally:
        runner.stop(timeout=10)
        pool.shutdown(wait=False, cancel_futures=True)
        conn.close()


# ================================================================================================ the parent
class ProcessRunner:
    """`runner.Runner`'s interface for a trainer that lives in a child process (see the module docstring)."""

    def __init__(self, recipe: dict, threads: int | None = None):
        recipe = {**recipe, "threads": threads or torch.get_num_threads(),
                  "switch_interval": sys.getswitchinterval()}
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
        # glibc gives each thread that allocates its own malloc arena; the child's RPC threads, busy when a class opens
        # the page, grew it by 96 MB (bench/load_test.py; +31 MB with two arenas: the trainer's, one for the RPCs).
        env = {"MALLOC_ARENA_MAX": "2", **os.environ, "PYTHONPATH": path}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from dqngan.process_runner import _child_entry; _child_entry({theirs.fileno()})"],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()  # the pending table and sending
        self._ended: str | None = None  # why the process is gone: "stopped", or what went wrong
        self._stopping = False
        self._final: dict[str, Any] | None = None
        self._cfg: Any = None
        self._last_snap: dict[str, Any] = {}
        started: Future = Future()
        self._pending[0] = started
        self._conn.send_bytes(pickle.dumps(recipe))
        self._reader = threading.Thread(target=self._read, name="dqngan-rpc-reader", daemon=True)
        self._reader.start()
        try:
            info = started.result(START_TIMEOUT)
        except BaseException:
            self._shutdown()
            raise
        self._device = torch.device(info["device"])
        self._cfg = self._call("cfg")

    # -------------------------------------------------------------------------------------------- recipes
    @classmethod
    def fresh(cls, cfg: Any, device: str = "auto", with_data: bool = True) -> ProcessRunner:
        return cls({"kind": "fresh", "config": cfg.to_dict(), "device": device, "with_data": with_data})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", with_data: bool = False,
                        overrides: dict | None = None, new_agent: bool = False) -> ProcessRunner:
        return cls({"kind": "checkpoint", "path": str(path), "device": device, "with_data": with_data,
                    "overrides": overrides, "new_agent": new_agent})

    # -------------------------------------------------------------------------------------------- the pipe
    def _read(self) -> None:
        while True:
            try:
                msg_id, ok, payload = pickle.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                break
            with self._lock:
                fut = self._pending.pop(msg_id, None)
            if fut is None:
                continue
            value = pickle.loads(payload)
            fut.set_result(value) if ok else fut.set_exception(value)
        self._mark_ended()
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ProcessEnded(self._ended))

    def _mark_ended(self) -> str:
        """Why the process is gone, decided once (by whichever side notices first: the reader or a failed send)."""
        try:
            code = self._proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        with self._lock:
            self._ended = self._ended or ("stopped" if self._stopping else
                                          f"the training process ended unexpectedly (exit code {code})")
            return self._ended

    def _call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        fut: Future = Future()
        with self._lock:
            if self._ended:
                raise ProcessEnded(self._ended)
            msg_id = next(self._ids)
            self._pending[msg_id] = fut
            try:
                self._conn.send_bytes(pickle.dumps((msg_id, name, args, kwargs)))
            except (OSError, ValueError):
                self._pending.pop(msg_id, None)
                sent = False
            else:
                sent = True
        if not sent:
            raise ProcessEnded(self._mark_ended())
        return fut.result(timeout)

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._ended is None and self._proc.poll() is None

    # -------------------------------------------------------------------------------------------- what it runs
    @property
    def cfg(self) -> Any:
        return self._cfg

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def step_count(self) -> int:
        return self._call("step_count")

    @property
    def agent_steps(self) -> int:
        return self._call("agent_steps")

    @property
    def elapsed(self) -> float:
        return self._call("elapsed")

    @property
    def history(self) -> Any:
        return self._call("history")

    @property
    def fixed_z(self) -> torch.Tensor:
        return self._call("fixed_z")

    @property
    def message(self) -> str | None:
        return self._call("message")

    @property
    def status(self) -> str:
        if self._ended:
            return "stopped" if self._ended == "stopped" else "error"
        try:
            return self._call("status")
        except ProcessEnded:
            return "error"

    @property
    def error(self) -> str | None:
        if self._ended and self._ended != "stopped":
            return self._ended
        return self._call("error")

    @property
    def error_trace(self) -> str | None:
        if self._ended:
            return None
        return self._call("error_trace")

    @property
    def reward_classifier(self) -> None:
        return None  # see the module docstring

    # -------------------------------------------------------------------------------------------- model reads
    @contextlib.contextmanager
    def model_access(self) -> Iterator[Any]:
        raise TypeError("the trainer lives in another process: use the runner's reads (generate, score, save, ...)")
        yield  # pragma: no cover

    def generate(self, z: torch.Tensor, refine: bool = False, goal: torch.Tensor | None = None) -> torch.Tensor:
        return self._call("generate", z, refine, goal)

    def refine(self, z: torch.Tensor, goal: torch.Tensor | None = None, steps: int | None = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self._call("refine", z, goal, steps)

    def q_values(self, z: torch.Tensor, t: int = 0, goal: int | None = None) -> torch.Tensor:
        return self._call("q_values", z, t, goal)

    def score(self, z: torch.Tensor, goal: int | None = None) -> torch.Tensor:
        return self._call("score", z, goal)

    def directions(self) -> torch.Tensor:
        return self._call("directions")

    def fid(self, n: int | None = None) -> float | None:
        return self._call("fid", n)

    def generator_copy(self) -> torch.nn.Module:
        return self._call("generator_copy").eval()

    def save(self, path: str | Path, include_replay: bool = True) -> Path:
        return self._call("save", str(path), include_replay=include_replay)

    def clear_history(self) -> None:
        self._call("clear_history")

    def set(self, **knobs: Any) -> None:
        try:
            self._call("set", **knobs)
        finally:
            self._cfg = self._call("cfg")

    # -------------------------------------------------------------------------------------------- commands
    def start(self) -> None:
        self._call("start")

    resume = start

    def step(self, n: int = 1, part: str = "joint") -> None:
        self._call("step", n, part)

    def pause(self) -> None:
        self._call("pause")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop training and end the process (idempotent)."""
        with self._lock:
            done = self._ended is not None
        if not done:
            self._stopping = True
            with contextlib.suppress(ProcessEnded, TimeoutError):
                self._call("stop", timeout=timeout)
            with self._lock:
                self._ended = self._ended or "stopped"
        self._shutdown()

    def wait(self, timeout: float = 60.0) -> bool:
        return self._call("wait", timeout, timeout=timeout + 30)

    def snapshot(self) -> dict[str, Any]:
        """The child's snapshot; after the process ended, the last one with the status and reason."""
        if not self._ended:
            try:
                self._last_snap = self._call("snapshot")
                return self._last_snap
            except ProcessEnded:
                pass
        if self._final is None:
            snap = dict(self._last_snap)
            stopped = self._ended == "stopped"
            snap.update(status="stopped" if stopped else "error", error=None if stopped else self._ended,
                        version=snap.get("version", 0) + 1, error_trace=None)
            self._final = snap
        return dict(self._final)


def default_kind() -> str:
    """DQNGAN_RUNNER=process|thread, else process on a CPU-only POSIX machine and thread with CUDA.

    Why a process on a CPU: a CPU step is mostly Python, and in the server's process every request handler's Python
    holds the GIL the trainer needs (bench/load_test.py, a class of 30 on 2 cores: training at 0.67x its alone speed
    in a thread, 1.03x in a child process). With CUDA the kernels run outside the GIL and the graphed step stays in
    the process that captured it."""
    kind = os.environ.get("DQNGAN_RUNNER") or (
        "process" if os.name == "posix" and not torch.cuda.is_available() else "thread")
    if kind not in ("process", "thread"):
        raise ValueError(f"DQNGAN_RUNNER must be 'process' or 'thread', not {kind!r}")
    if kind == "process" and os.name != "posix":
        raise ValueError("DQNGAN_RUNNER=process needs a POSIX system (it passes a socket to the child)")
    return kind
