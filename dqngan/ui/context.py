"""What every tab shares: the session registry, how runs are built (fresh, from a checkpoint), and app settings.

Built once per `build_demo`, so tests can run several apps side by side with different settings.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoint import CheckpointError, load_checkpoint
from ..config import Config, ConfigError, make_config
from ..data import DataError, ImageData, load_dataset
from ..process_runner import ProcessRunner
from ..runner import Runner
from ..trainer import Trainer
from .session import Registry, Run

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "checkpoints"
DATASETS = ("mnist5k", "mnist", "fashion-mnist")
USER_ERRORS = (ConfigError, CheckpointError, DataError, ValueError, FileNotFoundError, PermissionError)


def find_shipped(root: Path = SHIPPED) -> Path | None:
    """The pretrained checkpoint the app opens on: checkpoints/mnist if present, else the first complete one."""
    if not root.is_dir():
        return None
    cands = sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())
    named = [p for p in cands if p.name == "mnist"]
    return (named or cands or [None])[0]


def safe_name(name: str) -> str:
    """A checkpoint name that stays inside the save folder (letters, digits, - _ .)."""
    name = (name or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise ValueError("a checkpoint name is 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    return name


@dataclass
class AppContext:
    preset: str = "cpu"  # default preset when no checkpoint is shipped
    checkpoint: Path | None = None  # the base run's checkpoint
    device: str = "auto"
    save_root: Path = ROOT / "runs" / "app-checkpoints"
    registry: Registry = field(init=False)
    _data: dict = field(default_factory=dict, init=False)
    _data_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    max_running: int | None = None
    max_runs: int = 4
    runner_kind: str = "thread"  # "process": each run trains in a child process (process_runner: no shared GIL)

    def __post_init__(self) -> None:
        self.registry = Registry(self._make_base, max_running=self.max_running, max_runs=self.max_runs)

    # ------------------------------------------------------------------------------------------------ runs
    def base_config(self) -> Config:
        if self.checkpoint is not None:
            try:
                from ..checkpoint import read_config
                return read_config(self.checkpoint)
            except CheckpointError as e:
                log.warning("cannot read %s (%s); opening on a fresh model", self.checkpoint, e)
        return make_config(self.preset)

    def _make_base(self) -> Run:
        if self.checkpoint is not None:
            try:
                return self.from_checkpoint(self.checkpoint, label=f"pretrained {self.rel(self.checkpoint)}")
            except CheckpointError as e:
                log.warning("cannot load %s (%s); opening on a fresh model", self.checkpoint, e)
                self.checkpoint = None
        cfg = make_config(self.preset)
        if self.runner_kind == "process":
            return Run(ProcessRunner.fresh(cfg, self.device, with_data=False),
                       label=f"fresh model ({self.preset} preset)")
        return Run(Runner(Trainer(cfg, device=self.device, data=None)), label=f"fresh model ({self.preset} preset)")

    def fresh(self, cfg: Config) -> Run:
        """A new, untrained run; the dataset is loaded now so a bad choice fails here, readably."""
        if self.runner_kind == "process":
            self.check_dataset(cfg.dataset)
            return Run(ProcessRunner.fresh(cfg, self.device), label="fresh model")
        return Run(Runner(Trainer(cfg, device=self.device, data=self.dataset(cfg.dataset))), label="fresh model")

    def from_checkpoint(self, path: Path, label: str | None = None, with_data: bool = False,
                        overrides: dict | None = None, new_agent: bool = False) -> Run:
        label = label or f"checkpoint {self.rel(path)}"
        if self.runner_kind == "process":  # the child reads the checkpoint and its dataset itself
            runner = ProcessRunner.from_checkpoint(path, self.device, with_data=with_data, overrides=overrides,
                                                   new_agent=new_agent)
            return Run(runner, label=label, source=str(path))
        data = None
        if with_data:  # share the resident dataset instead of each trainer loading its own copy
            from ..checkpoint import read_config
            data = self.dataset(read_config(path).dataset)
        trainer = load_checkpoint(path, device=self.device, data=data, overrides=overrides, new_agent=new_agent)
        return Run(Runner(trainer), label=label, source=str(path))

    def lesson_config(self, lesson: dict) -> Config:
        """The config a lesson starts with (before any change from a share link)."""
        if lesson["start"] == "fresh":
            return make_config(lesson["preset"], lesson.get("set"))
        from ..checkpoint import read_config
        return read_config(SHIPPED / lesson["checkpoint"]).replace(**lesson.get("set", {}))

    def lesson_run(self, lesson: dict, overrides: dict | None = None) -> Run:
        """The run a lesson starts on (see lessons.LESSONS), with the share link's config changes on top.

        A lesson's run records its history from the lesson's start, so every chart's x-axis starts with the lesson."""
        settings = {**lesson.get("set", {}), **(overrides or {})}
        if lesson["start"] == "fresh":
            cfg = make_config(lesson["preset"], settings)
            run = self.fresh(cfg)
            run.label = f"lesson: fresh model ({lesson['preset']} preset)"
            return run
        path = SHIPPED / lesson["checkpoint"]
        if not (path / "manifest.json").is_file():
            raise CheckpointError(f"this lesson needs the shipped checkpoint checkpoints/{lesson['checkpoint']}, "
                                  f"which is missing here")
        new_agent = lesson["start"] == "agent"
        run = self.from_checkpoint(path, with_data=True, overrides=settings or None, new_agent=new_agent,
                                   label=f"lesson: {self.rel(path)}" + (" with a fresh agent" if new_agent else ""))
        if new_agent:
            run.runner.clear_history()
        return run

    def clone_base(self) -> Run:
        """A private copy of the base run to keep training (re-read from its checkpoint, or fresh)."""
        base = self.registry.base
        if base.source is not None:
            return self.from_checkpoint(Path(base.source), label=f"continued from {self.rel(Path(base.source))}",
                                        with_data=True)
        return self.fresh(base.runner.cfg)

    def check_dataset(self, name: str) -> None:
        if name not in DATASETS and not os.environ.get("DQNGAN_ALLOW_FOLDERS"):
            raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

    def dataset(self, name: str) -> ImageData:
        self.check_dataset(name)
        with self._data_lock:
            if name not in self._data:
                if len(self._data) >= 2:
                    self._data.clear()  # bounded: at most two datasets resident
                self._data[name] = load_dataset(name)
            return self._data[name]

    def rel(self, p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(ROOT))
        except ValueError:
            return str(p)

    # ------------------------------------------------------------------------------------------------ checkpoints
    def local_checkpoints(self) -> list[str]:
        """Complete checkpoints under checkpoints/ and the app's save folder (as display paths)."""
        out = []
        for root in (SHIPPED, self.save_root):
            if root.is_dir():
                out += [self.rel(p) for p in sorted(root.iterdir()) if (p / "manifest.json").is_file()]
        if self.checkpoint is not None and self.rel(self.checkpoint) not in out:
            out.insert(0, self.rel(self.checkpoint))
        return out

    def resolve_local(self, shown: str) -> Path:
        """Map a listed name back to its folder; only listed checkpoints can be opened (no arbitrary paths)."""
        if shown not in self.local_checkpoints():
            raise CheckpointError(f"{shown!r} is not one of the listed checkpoints; press Refresh")
        p = Path(shown)
        return p if p.is_absolute() else ROOT / p
