"""Per-session trainers: who owns which run, a cap on concurrent training, and cleanup.

Every browser session first looks at the shared *base* run (the shipped checkpoint, or a fresh model); it gets a run
of its own on Train / Step / Reset / Load. At most `max_running` runs train at once (2 vCPUs can't share more) and at
most `max_runs` are held in memory; idle sessions are swept, and `drop` (wired to `demo.unload`) stops a closed tab's
training. A tab left hidden stops polling; after `idle_timeout` without a poll its run is stopped too, so a forgotten
tab can't hold the only training slot forever.

A refresher thread copies each active trainer's `snapshot()` into `Run.snap`, so poll handlers never wait for the
trainer's model lock (held for a whole training step) and every viewer of a run shares one copy.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import Config
from ..runner import Runner

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class Busy(Exception):
    """Every training slot is taken (the message says what the user can do)."""


def default_max_running() -> int:
    """DQNGAN_MAX_TRAINERS, else 1 on CPU (2 cores) and 2 on a GPU."""
    env = os.environ.get("DQNGAN_MAX_TRAINERS")
    if env:
        return max(1, int(env))
    return 2 if torch.cuda.is_available() else 1


@dataclass
class Run:
    """A trainer held by the app, plus the latest copy of its snapshot and a small render cache."""

    runner: Runner
    label: str  # where it came from, e.g. "checkpoint checkpoints/mnist" or "fresh model (tiny preset)"
    owner: str | None = None  # session hash; None for the shared base run
    source: str | None = None  # checkpoint directory it was loaded from, if any
    lesson: str | None = None  # the lesson it was set up for (a repeated pick of that lesson keeps it)
    uid: int = field(default_factory=lambda: next(_ids))
    snap: dict = field(default_factory=dict)
    dirty: bool = True
    _memo: dict = field(default_factory=dict)

    def refresh(self) -> dict:
        self.snap = self.runner.snapshot()
        self.dirty = False
        return self.snap

    @property
    def running(self) -> bool:
        return self.runner.status == "running"

    def memo(self, key: tuple, make: Callable[[], Any], keep: int = 64) -> Any:
        """Cache derived views (figures, grid images) per data version; shared by everyone watching this run."""
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= keep:
                self._memo.clear()  # crude but bounded; entries are cheap to rebuild
            hit = self._memo[key] = make()
        return hit


@dataclass
class Session:
    run: Run | None = None
    watching: Run | None = None
    last_seen: float = field(default_factory=time.monotonic)
    follow: bool = False  # opened with ?watch=1: watch whoever trains (a student following the teacher's run)
    charts_key: str = ""  # the data version this viewer's charts were last told to show (see train_tab.poll)
    charts_at: float = 0.0
    chart_seconds: float = 3.0  # how often this viewer's charts redraw while training (the speed control)
    step_delay: float = 0.0  # the speed control's wait after each step of this session's own run
    explore_uid: int = -1  # the run the Explore tab was last drawn for (see explore_tab.sync)
    explore_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _notice: str | None = None
    _notice_at: float = 0.0

    NOTICE_SECONDS = 30.0  # how long a message stays in the status line

    @property
    def notice(self) -> str | None:
        """The last readable message for this session (shown in the status line for a while)."""
        if self._notice and time.monotonic() - self._notice_at < self.NOTICE_SECONDS:
            return self._notice
        return None

    @notice.setter
    def notice(self, msg: str | None) -> None:
        self._notice, self._notice_at = msg, time.monotonic()


class Registry:
    def __init__(self, make_base: Callable[[], Run], *, max_running: int | None = None, max_runs: int = 4,
                 idle_timeout: float = 1800.0, refresh_every: float = 0.25):
        self.max_running = max_running or default_max_running()
        self.max_runs = max(max_runs, self.max_running)
        self.idle_timeout = idle_timeout
        self.refresh_every = refresh_every
        self._make_base = make_base
        self._base: Run | None = None
        self._sessions: dict[str, Session] = {}
        self._building: set[str] = set()  # sessions whose new run is being built (see _make_room)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle
    @property
    def base(self) -> Run:
        with self._lock:
            if self._base is None:
                self._base = self._make_base()
                self._base.refresh()
            return self._base

    def start(self) -> Registry:
        if self._thread is None:
            self._thread = threading.Thread(target=self._refresh_loop, name="dqngan-ui-refresh", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop every run (used when the app shuts down and by tests)."""
        self._closed.set()
        with self._lock:
            runs = [s.run for s in self._sessions.values() if s.run is not None]
            self._sessions.clear()
        for r in runs:
            r.runner.stop(timeout=10)

    # ------------------------------------------------------------------------------------------------ sessions
    def session(self, sid: str) -> Session:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                s = self._sessions[sid] = Session()
            s.last_seen = time.monotonic()
            return s

    def view(self, sid: str) -> Run:
        """The run this session looks at: the one it chose to watch (while its owner keeps it), else its own, else
        the base."""
        s = self.session(sid)
        if s.watching is not None:
            if s.watching.owner is not None and self._owned(s.watching):
                return s.watching
            s.watching = None
        return s.run if s.run is not None else self.base

    def unwatch(self, sid: str) -> None:
        self.session(sid).watching = None

    def release(self, sid: str, run: Run) -> None:
        """Give back a run the session just made (e.g. its Train found every slot busy)."""
        with self._lock:
            s = self._sessions.get(sid)
            if s is not None and s.run is run:
                s.run = None
        threading.Thread(target=run.runner.stop, kwargs={"timeout": 30}, daemon=True).start()

    def _owned(self, run: Run) -> bool:
        return any(s.run is run for s in self._sessions.values())

    def runs(self) -> list[Run]:
        with self._lock:
            return [s.run for s in self._sessions.values() if s.run is not None]

    def running_count(self, exclude: Run | None = None) -> int:
        return sum(1 for r in self.runs() if r.running and r is not exclude)

    def drop(self, sid: str, reason: str = "closed") -> None:
        """Forget a session and stop its trainer (in the background: a step may take a moment to finish)."""
        with self._lock:
            s = self._sessions.pop(sid, None)
        if s is not None and s.run is not None:
            log.info("session %s %s: stopping run %d", sid[:8], reason, s.run.uid)
            run = s.run
            threading.Thread(target=run.runner.stop, kwargs={"timeout": 30}, daemon=True).start()

    # ------------------------------------------------------------------------------------------------ commands
    def own(self, sid: str, make: Callable[[], Run], *, replace: bool = False) -> Run:
        """The session's own run, created with `make` if it has none (or `replace`). May evict an idle run."""
        with self._lock:
            s = self.session(sid)
            if s.run is not None and not replace:
                return s.run
            new_slot = s.run is None
            if new_slot:
                self._make_room(sid)
                self._building.add(sid)
        try:
            run = make()  # outside the lock: building a model can take a moment
        finally:
            if new_slot:
                with self._lock:
                    self._building.discard(sid)
        run.owner = sid
        run.refresh()
        with self._lock:
            if self._sessions.get(sid) is not s:  # the tab closed (drop) while the model was being built: don't
                raise Busy("this session has ended (its tab was closed); reload the page")  # bring it back
            old, s.run = s.run, run
        if old is not None:
            threading.Thread(target=old.runner.stop, kwargs={"timeout": 30}, daemon=True).start()
        return run

    def _make_room(self, sid: str) -> None:
        """Free a model slot for `sid`'s new run, counting the runs other sessions are still building: 30 clicks
        at once must not each build a model (with the process runner, a 400 MB process each) before any counts."""
        held = [(s.last_seen, k, s) for k, s in self._sessions.items() if s.run is not None and k != sid]
        building = len(self._building - {sid})
        if len(held) + building < self.max_runs:
            return
        idle = sorted((t, k, s) for t, k, s in held if not s.run.running)
        if not idle:
            loading = f", {building} of them being loaded for other visitors" if building else ""
            raise Busy(f"busy: all {self.max_runs} model slots are in use{loading}; watch a run or try again in a "
                       "moment")
        _, k, s = idle[0]
        log.info("evicting the idle run of session %s to make room", k[:8])
        run, s.run = s.run, None
        s.notice = "your paused run was released to make room for another visitor (Reset to start again)"
        threading.Thread(target=run.runner.stop, kwargs={"timeout": 30}, daemon=True).start()

    def check_slot(self, run: Run | None = None) -> None:
        """Raise Busy if starting `run` (or, with None, any new run) would exceed the cap on concurrent training.
        Called with None before a new run is built, so 30 clicks at once don't each load a model only to be told
        the slots are taken."""
        if run is not None and run.running:
            return
        n = self.running_count(exclude=run)
        if n >= self.max_running:
            raise Busy(f"busy: {n} of {self.max_running} training slot(s) in use by other visitors. Watch their run "
                       f"(the Watch button) or wait and press Train again; you can still explore and draw.")

    def train(self, run: Run, steps: int | None = None, part: str = "joint") -> None:
        with self._lock:  # the check and the start are one step, so two clicks can't both take the last slot
            if not self._owned(run):  # evicted, replaced or dropped since the click made it: starting it would
                # train outside the cap, and nothing would ever stop it
                raise Busy("busy: your new run was released before it could start (another visitor needed the "
                           "room, or the session ended); press Train again")
            self.check_slot(run)
            if steps is None:
                run.runner.start()
            else:
                run.runner.step(steps, part)
            run.dirty = True

    def watch(self, sid: str) -> Run | None:
        """Follow (read-only) a run another session is training; None if nobody is."""
        with self._lock:
            s = self.session(sid)
            others = [r for r in self.runs() if r.running and r.owner != sid]
            s.watching = others[0] if others else None
            return s.watching

    # ------------------------------------------------------------------------------------------------ background
    def _refresh_loop(self) -> None:
        last_sweep = time.monotonic()
        while not self._closed.wait(self.refresh_every):
            for run in self.runs():
                try:
                    snap = run.snap
                    if run.dirty or run.running or run.runner.status != snap.get("status"):
                        run.refresh()
                except Exception:  # a broken run must not stop the refresher for everyone else
                    log.exception("refreshing run %d failed", run.uid)
            if time.monotonic() - last_sweep > 5:
                last_sweep = time.monotonic()
                self.sweep()

    def sweep(self) -> None:
        """Drop sessions not seen for idle_timeout seconds (tabs whose unload never arrived)."""
        now = time.monotonic()
        with self._lock:
            stale = [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_timeout]
        for k in stale:
            self.drop(k, reason="idle")


def config_core(cfg: Config | dict) -> dict:
    """The non-live part of a config: if it matches the base run's, training can continue from the base checkpoint."""
    from ..config import LIVE_KEYS

    d = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    return {k: v for k, v in d.items() if k not in LIVE_KEYS}
