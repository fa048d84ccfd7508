"""`python -m dqngan {train,sample,bench} ...`: thin wrappers around the engine with one-line errors."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .argtypes import digit, finite_float, int_at_least
from .checkpoint import CheckpointError
from .config import ConfigError, parse_overrides
from .data import DataError
from .device import DeviceError
from .distributed import DistError

# Errors a user can cause: reported as one line, exit code 2 (bad arguments) or 1 (bad data / files).
USER_ERRORS = (ConfigError, CheckpointError, DataError, DeviceError, DistError, FileNotFoundError, PermissionError)


class CLIError(Exception):
    """A user-facing failure: printed as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; we want one line
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


POSITIVE = finite_float(positive=True)
DECIDE_EVERY = 10  # steps between the ranks' joint stop/save decisions (each one is an all-reduce)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dqngan", description="DQN-GAN Lab: a DCGAN plus a DQN agent that steers its latent space.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train (or resume) a GAN + agent; DIR always holds the latest checkpoint",
                       description="Train the GAN and the agent in one loop. DIR is saved atomically every "
                                   "--save-every seconds and at the end (Ctrl-C saves too).")
    t.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int_at_least(1), help="train this many more steps")
    g.add_argument("--seconds", type=POSITIVE, help="train for this many seconds")
    t.add_argument("--resume", metavar="DIR", help="continue from this checkpoint (same step counter and RNG)")
    t.add_argument("--new-agent", action="store_true",
                   help="with --resume: keep the GAN, start a fresh agent (lets q_state/q_hidden change)")
    t.add_argument("--save-every", type=POSITIVE, default=60.0, metavar="SECONDS",
                   help="checkpoint interval in seconds (default 60)")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--dataset", help="mnist5k (embedded, default), mnist, fashion-mnist, or a folder of images")
    t.add_argument("--preset", help="cpu (default on CPU), gpu (default on CUDA), tiny, canonical, wgan-gp, hinge; "
                                    "with --resume: agent (freeze G, train the agent)")
    t.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="draw samples from a checkpoint as .npy (N x 28 x 28 uint8) or .png grid")
    s.add_argument("--checkpoint", required=True, metavar="DIR")
    s.add_argument("--n", type=int_at_least(1), default=64)
    s.add_argument("--out", required=True, metavar="FILE", help="output .npy or .png")
    s.add_argument("--refine", action="store_true", help="let the trained agent refine each z greedily")
    s.add_argument("--goal", type=digit, help="steer towards this digit (implies --refine)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))

    e = sub.add_parser("export", help="copy a checkpoint without its replay memory (small enough for git / the Hub)")
    e.add_argument("--checkpoint", required=True, metavar="DIR")
    e.add_argument("--out", required=True, metavar="DIR")
    e.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="change training knobs for whoever continues the run (e.g. n_envs=64 q_batch=64 on a CPU); "
                        "keys that change tensor shapes are refused")

    b = sub.add_parser("bench", help="GAN-only vs joint steps/s and env transitions/s, side by side")
    b.add_argument("--seconds", type=POSITIVE, default=8.0, help="seconds per measurement round")
    b.add_argument("--rounds", type=int_at_least(1), default=3, help="alternating rounds per variant")
    b.add_argument("--preset", default="cpu")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    b.add_argument("--json", action="store_true")
    for mod in _plugins():
        COMMANDS.update(mod.register(sub))
    return p


def _plugins() -> list[Any]:
    """Command modules that add subcommands (evaluate, push, pull); each has register(subparsers) -> handlers."""
    import importlib

    mods = []
    for name in PLUGINS:
        try:
            mods.append(importlib.import_module(f".{name}", __package__))
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise
    return mods


# ---------------------------------------------------------------------------------------------------- commands
def cmd_train(a: argparse.Namespace) -> int:
    from .distributed import from_env

    dist, device = from_env(a.device)  # WORLD_SIZE > 1 (torchrun): one rank of a distributed run
    try:
        return _train(a, dist, device)
    except RuntimeError as e:
        if dist is None:
            raise
        # a collective failed: another rank crashed or cannot be reached (gloo/NCCL raise within the timeout)
        raise CLIError(f"rank {dist.rank}: another process of this distributed run stopped or cannot be reached "
                       f"({str(e).splitlines()[0][:160]}); the last complete checkpoint in {a.out} is kept") from None
    finally:
        if dist is not None:
            dist.close()


def _train(a: argparse.Namespace, dist: Any, device: Any) -> int:
    from tqdm import tqdm

    from .checkpoint import load_checkpoint, save_checkpoint
    from .config import PRESETS, make_config
    from .data import load_dataset
    from .trainer import Trainer

    main_rank = dist is None or dist.main
    overrides = parse_overrides(a.set)
    if a.seed is not None:
        overrides["seed"] = a.seed
    if a.dataset is not None:
        overrides["dataset"] = a.dataset
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")
    if a.new_agent and not a.resume:
        raise CLIError("--new-agent only makes sense with --resume")
    if a.resume:
        if a.preset:  # on resume a preset only overrides its own keys (e.g. the agent phase)
            if a.preset not in PRESETS:
                raise CLIError(f"unknown preset {a.preset!r}; choose from {', '.join(PRESETS)}")
            overrides = {**PRESETS[a.preset], **overrides}
        trainer = load_checkpoint(a.resume, device=device, overrides=overrides, new_agent=a.new_agent, dist=dist)
        _ = trainer.data  # load now, so a missing dataset fails before any training
        for note in trainer.notes if main_rank else ():
            print(f"dqngan: note: {note}", file=sys.stderr)
    else:
        preset = a.preset or ("gpu" if device.type == "cuda" else "cpu")
        cfg = make_config(preset, overrides)
        trainer = Trainer(cfg, device=device, data=load_dataset(cfg.dataset), dist=dist)

    start_step, t0 = trainer.step_count, time.monotonic()
    last_save, shown, decided = [time.monotonic()], [-1], [start_step // DECIDE_EVERY]
    total = a.steps if a.steps else (int(a.seconds) if a.seconds else None)
    bar = tqdm(total=total, unit="step" if a.steps else "s", disable=a.no_progress or not main_rank,
               dynamic_ncols=True, desc="train", file=sys.stderr)
    stop = _StopFlag()

    def on_step(tr: Any) -> None:
        if a.steps:  # a graphed macro-step makes several steps at once
            bar.update(tr.step_count - start_step - bar.n)
        else:  # redraw once a second, not every step (terminal I/O would cost more than a small step)
            n = min(total or 0, int(time.monotonic() - t0)) if total else tr.step_count - start_step
            if n != bar.n:
                bar.n = n
                bar.refresh()
        if tr.record_version != shown[0]:
            shown[0] = tr.record_version
            h = tr.history
            bar.set_postfix(step=tr.step_count, d=_fmt(h.last("d_loss")), g=_fmt(h.last("g_loss")),
                            td=_fmt(h.last("td_loss")), fid=_fmt(h.last("fid")), refresh=False)
        time_up = a.seconds is not None and time.monotonic() - t0 >= a.seconds
        save_due = time.monotonic() - last_save[0] >= a.save_every
        if dist is not None:  # rank 0's clock and any rank's Ctrl-C decide for all: the ranks stay in step
            block = tr.step_count // DECIDE_EVERY  # every rank is at the same step: all skip or all decide
            if block == decided[0]:
                return
            decided[0] = block
            time_up, save_due = dist.any_of([main_rank and time_up or stop.hit, main_rank and save_due], tr.device)
        if save_due:
            save_checkpoint(tr, out)
            last_save[0] = time.monotonic()
        if time_up:
            raise _TimeUp
        stop.check()

    interrupted = False
    try:
        ok = trainer.run(steps=a.steps, seconds=None, on_step=on_step)
    except _TimeUp:
        ok, interrupted = trainer.check(), stop.hit
    except _Interrupted:
        ok, interrupted = True, True
    finally:
        stop.restore()
        bar.close()
    seconds = time.monotonic() - t0
    fid = trainer.fid() if ok and main_rank else None
    if fid is not None:
        trainer.history.add(trainer.step_count, fid=fid)
    save_checkpoint(trainer, out)
    steps = trainer.step_count - start_step
    summary = {"steps": steps, "step": trainer.step_count, "seconds": round(seconds, 3),
               "steps_per_s": round(steps / seconds, 3) if seconds > 0 else None, "checkpoint": str(out),
               "device": str(trainer.device), "fid": fid, "interrupted": interrupted,
               "world_size": 1 if dist is None else dist.world}
    if not main_rank:
        return 0 if ok else 1
    if not ok:
        print(f"dqngan: training stopped: {trainer.message}; saved the last good state to {out}", file=sys.stderr)
        summary["error"] = trainer.message
    elif not a.json:
        fid_txt = f", FID {fid:.2f}" if fid is not None else ""
        procs = f" on {dist.world} processes" if dist is not None else ""
        print(f"trained {steps} steps in {seconds:.1f} s ({summary['steps_per_s']} steps/s{procs}){fid_txt}; "
              f"checkpoint: {out}")
    if a.json:
        print(json.dumps(summary))
    return 0 if ok else 1


def cmd_sample(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .checkpoint import load_checkpoint
    from .plots import grid_image, save_png

    suffix = Path(a.out).suffix.lower()
    if suffix not in (".npy", ".png"):
        raise CLIError(f"--out must end in .npy or .png, got {a.out!r}")
    if not Path(a.out).parent.exists() and str(Path(a.out).parent) not in ("", "."):
        raise CLIError(f"the folder of --out ({Path(a.out).parent}) does not exist")
    trainer = load_checkpoint(a.checkpoint, device=a.device)
    goal = None
    if a.goal is not None:
        if trainer.cfg.beta_goal <= 0:
            raise CLIError("this checkpoint's agent was trained without goals (beta_goal=0); "
                           "train with --set beta_goal=1 to use --goal")
        goal = torch.full((a.n,), a.goal, dtype=torch.long, device=trainer.device)
    elif a.refine and trainer.cfg.beta_goal > 0:
        # every training episode of this agent had a goal: on no-goal states it damages the digits (FID ~10x)
        raise CLIError(f"this agent was trained only with goal digits (beta_goal={trainer.cfg.beta_goal:g}): "
                       f"pass --goal DIGIT; without one its moves are unreliable (drop --refine for raw samples)")
    z = torch.randn(a.n, trainer.cfg.z_dim, generator=torch.Generator().manual_seed(a.seed))
    images = trainer.generate(z, refine=a.refine or goal is not None, goal=goal).numpy()
    if suffix == ".npy":
        np.save(a.out, images)
    else:
        save_png(a.out, grid_image(images), scale=2)
    print(f"wrote {a.n} samples to {a.out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint, resolve, save_checkpoint

    if resolve(a.checkpoint) == Path(a.out).resolve() or Path(a.checkpoint).resolve() == Path(a.out).resolve():
        raise CLIError("--out must differ from --checkpoint")
    trainer = load_checkpoint(a.checkpoint, device="cpu", overrides=parse_overrides(a.set))
    out = save_checkpoint(trainer, a.out, include_replay=False)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"exported step {trainer.step_count} to {out} ({size:.1f} MB, no replay memory)")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .benchmark import format_report, run_benchmark

    result = run_benchmark(preset=a.preset, seconds=a.seconds, rounds=a.rounds, device=a.device)
    print(json.dumps(result) if a.json else format_report(result))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"train": cmd_train, "sample": cmd_sample,
                                                             "bench": cmd_bench, "export": cmd_export}
PLUGINS = ("hub_cli", "evaluate_cli")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return COMMANDS[a.command](a)
    except (CLIError, *USER_ERRORS, *_plugin_errors()) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"dqngan {a.command}: error: {msg}", file=sys.stderr)
        return 2 if isinstance(e, (CLIError, ConfigError, DeviceError)) else 1


# ---------------------------------------------------------------------------------------------------- helpers
def _plugin_errors() -> tuple[type[BaseException], ...]:
    """User-facing error classes that plugins declare as USER_ERRORS."""
    errs: list[type[BaseException]] = []
    for mod in _plugins():
        errs.extend(getattr(mod, "USER_ERRORS", ()))
    return tuple(errs)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


class _Interrupted(Exception):
    pass


class _TimeUp(Exception):
    pass


class _StopFlag:
    """Ctrl-C / SIGTERM set a flag; training stops after the current step (never half-way through it), then saves."""

    def __init__(self) -> None:
        self.hit = False
        self.saved: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True

    def check(self) -> None:
        if self.hit:
            raise _Interrupted

    def restore(self) -> None:
        for sig, old in self.saved.items():
            signal.signal(sig, old)


if __name__ == "__main__":
    sys.exit(main())
