"""Checkpoints: one directory each, safetensors + JSON only (nothing is ever unpickled), written atomically.

Layout of DIR:
    config.json               the full Config
    weights.safetensors       G, G_ema, D, D_bar, Q, Q_target (keys prefixed "G." ...)
    train_state.safetensors   optimizer tensors, replay memory, env state, directions, fixed noise, RNG state
    train_state.json          counters, optimizer hyper-parameters, metric history
    metrics.json              the latest metrics (step, FID, D scores, ...)
    samples.png               raw | agent-refined samples from the fixed noise
    manifest.json             sha256 and size of every file above; written last, so its presence marks completeness

A save writes DIR.tmp, then swaps it in (DIR -> DIR.old, DIR.tmp -> DIR, delete DIR.old). A kill at any moment leaves
one complete checkpoint among DIR, DIR.tmp and DIR.old, and `resolve` finds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import Config, ConfigError

FORMAT = "dqngan-checkpoint/1"
WEIGHTS = "weights.safetensors"
STATE = "train_state.safetensors"
STATE_JSON = "train_state.json"
REQUIRED = ("config.json", WEIGHTS)


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt or does not match its config (one-line message)."""


# ---------------------------------------------------------------------------------------------------- writing
def save_checkpoint(trainer: Any, path: str | os.PathLike, include_replay: bool = True) -> Path:
    """Write the trainer's full state (`trainer.state_dict()`) to `path` atomically. Returns the path. The caller owns
    the trainer for the duration (a running app saves through `Runner.save`, which waits for a gap between steps).

    Without the replay memory (`include_replay=False`) a checkpoint is small enough to ship in a git repo or push to
    the Hub; resuming it still works, but refills replay first, so it is not bit-exact.

    In a distributed run every rank calls this at the same step: rank 0 writes the checkpoint, and each rank r > 0
    adds its own episodes, replay and random stream as DIR.tmp/rank{r}.safetensors before rank 0 swaps it in."""
    dist = getattr(trainer, "dist", None)
    if dist is None:
        return _save(trainer, Path(path), include_replay)
    tmp, _ = _siblings(Path(path))
    if dist.main:
        return _save(trainer, Path(path), include_replay, dist)
    dist.barrier()  # rank 0 has made DIR.tmp
    _save_tensors(trainer.rank_state(), tmp / f"rank{dist.rank}.safetensors")
    dist.barrier()  # rank 0 may now list, digest and swap
    return Path(path)


def _save(trainer: Any, path: Path, include_replay: bool = True, dist: Any = None) -> Path:
    tmp, old = _siblings(path)
    _discard(tmp)
    tmp.mkdir(parents=True)
    if dist is not None:
        dist.barrier()  # the other ranks write DIR.tmp/rank{r}.safetensors now
    weights, tensors, meta = trainer.state_dict()
    meta = {"format": FORMAT, **meta, "world_size": 1 if dist is None else dist.world}
    if not include_replay:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("replay.")}
    _save_tensors(weights, tmp / WEIGHTS)
    _save_tensors(tensors, tmp / STATE)
    _write_json(tmp / STATE_JSON, meta)
    _write_json(tmp / "config.json", trainer.cfg.to_dict())
    _write_json(tmp / "metrics.json", latest_metrics(trainer))
    from .plots import save_grid_png
    if trainer.grids:
        _, raw, refined = trainer.grids[-1]
    else:  # e.g. right after loading: grids are not stored, so draw them from the fixed noise
        raw = trainer.generate(trainer.fixed_z).numpy()
        refined = trainer.generate(trainer.fixed_z, refine=True).numpy()
    save_grid_png(tmp / "samples.png", raw, refined)
    if dist is not None:
        dist.barrier()  # every rank's file is in
    files = sorted(p.name for p in tmp.iterdir())
    _write_json(tmp / "manifest.json", {"format": FORMAT, "files": {f: _digest(tmp / f) for f in files}})
    _fsync_dir(tmp)
    if path.exists():
        _discard(old)
        os.replace(path, old)
    os.replace(tmp, path)
    _discard(old)
    _fsync_dir(path.parent)
    return path


def latest_metrics(trainer: Any) -> dict[str, Any]:
    h = trainer.history
    keys = ("d_loss", "g_loss", "d_real", "d_fake", "d_refined", "td_loss", "episode_return", "fid", "epsilon")
    out = {"step": trainer.step_count, "agent_steps": trainer.agent_steps, "train_seconds": round(trainer.elapsed, 2),
           "device": str(trainer.device)}
    out.update({k: h.last(k) for k in keys if h.last(k) is not None})
    return out


# ---------------------------------------------------------------------------------------------------- reading
def resolve(path: str | os.PathLike) -> Path:
    """The complete checkpoint at `path`, falling back to an interrupted save's DIR.tmp or DIR.old."""
    path = Path(path)
    tmp, old = _siblings(path)
    for cand in (path, tmp, old):
        if (cand / "manifest.json").is_file():
            return cand
    if path.is_file():
        raise CheckpointError(f"{path} is a file; a checkpoint is a directory (holding config.json and "
                              f"{WEIGHTS})")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    missing = [f for f in REQUIRED + ("manifest.json",) if not (path / f).is_file()]
    raise CheckpointError(f"{path} is not a complete checkpoint (missing {', '.join(missing)})")


def read_config(path: str | os.PathLike) -> Config:
    path = resolve(path)
    _verify_manifest(path)
    try:
        raw = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path / 'config.json'} is not valid JSON ({e})") from None
    try:
        return Config.from_dict(raw)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path / 'config.json'}: {e}") from None


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "auto", data: Any = None,
                    overrides: dict[str, Any] | None = None, new_agent: bool = False, dist: Any = None) -> Any:
    """Rebuild a Trainer from a checkpoint; it continues exactly where the saved run stopped.

    `overrides` may change config values that don't change any tensor shape (e.g. the dataset or logging knobs).
    `new_agent` keeps the GAN but starts a fresh agent (Q-networks, optimizer, replay, epsilon schedule), so agent
    settings that change shapes (q_state, q_hidden) can be tried on a trained GAN.

    With `dist` (a rank of a distributed run), every rank loads the models and rank 0's state; rank r > 0 then takes
    its own saved episodes, replay and random stream when the checkpoint was written by as many ranks (an exact
    resume), else starts a fresh stream (and says so in `trainer.notes`)."""
    from .trainer import AGENT_PARTS, Trainer

    path = resolve(path)
    cfg = read_config(path)
    if overrides:
        try:
            cfg = cfg.replace(**overrides)
        except (ConfigError, TypeError) as e:
            raise CheckpointError(str(e)) from None
    weights = _load_tensors(path / WEIGHTS)
    trainer = Trainer(cfg, device=device, data=data, dist=dist)
    skip = AGENT_PARTS if new_agent else ()
    for name, module in trainer.modules().items():
        if name not in skip:
            _check_module(module, name, weights, path, cfg)
    trainer.load_weights(weights, skip=skip)
    if (path / STATE).is_file():
        tensors = _load_tensors(path / STATE)
        try:
            meta = json.loads((path / STATE_JSON).read_text())
        except (OSError, ValueError) as e:  # ValueError: bad JSON or bytes that are not UTF-8
            raise CheckpointError(f"{path / STATE_JSON} is unreadable ({_short(e)})") from None
        try:
            trainer.load_state_dict(tensors, meta, new_agent)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path}: training state does not match the config ({_short(e)})") from None
        if dist is not None:
            _resume_rank(trainer, path, meta, dist, new_agent)
        saved_world, world = int(meta.get("world_size", 1)), 1 if dist is None else dist.world
        if saved_world != world:
            trainer.notes.append(f"checkpoint written by {saved_world} process(es), resumed with {world}: the "
                                 f"models continue exactly, the episodes and random streams of the other ranks "
                                 f"start afresh (bit-exact resume needs the same number of processes)")
    return trainer


def _resume_rank(trainer: Any, path: Path, meta: dict[str, Any], dist: Any, new_agent: bool) -> None:
    saved_world = int(meta.get("world_size", 1))
    own = path / f"rank{dist.rank}.safetensors"
    if dist.rank > 0:
        if own.is_file() and saved_world == dist.world and not new_agent:
            state = _load_tensors(own)
            if int(state["rank.step"][0]) == trainer.step_count:
                trainer.load_rank_state(state)
            else:
                trainer.reseed_rank()
        else:
            trainer.reseed_rank()
    trainer.broadcast_models()


def _check_module(module: torch.nn.Module, name: str, weights: dict[str, torch.Tensor], path: Path, cfg: Config
                  ) -> None:
    """One readable line for weights that do not fit the config (missing, extra or differently shaped tensors)."""
    prefix = name + "."
    sd = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    if missing:
        raise CheckpointError(f"{path / WEIGHTS} lacks {prefix}{missing[0]} (and {len(missing) - 1} more); "
                              f"not a dqngan checkpoint for this config")
    for k, v in own.items():
        if sd[k].shape != v.shape:
            raise CheckpointError(
                f"{path / WEIGHTS}: {prefix}{k} has shape {list(sd[k].shape)} but the config (width={cfg.width}, "
                f"z_dim={cfg.z_dim}, n_dirs={cfg.n_dirs}) expects {list(v.shape)}")
    extra = sorted(set(sd) - set(own))
    if extra:
        raise CheckpointError(f"{path / WEIGHTS} has unexpected tensor {prefix}{extra[0]}")


# ---------------------------------------------------------------------------------------------------- helpers
def _discard(d: Path) -> None:
    """Delete a checkpoint directory, its manifest first: a kill half-way must not leave a partial directory that
    still looks complete (DIR.tmp may be the only complete copy after an earlier kill, and `resolve` trusts it)."""
    (d / "manifest.json").unlink(missing_ok=True)
    shutil.rmtree(d, ignore_errors=True)


def _siblings(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")


def _save_tensors(tensors: dict[str, torch.Tensor], file: Path) -> None:
    # safetensors wants contiguous CPU tensors that don't share memory
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(file))
    _fsync(file)


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file} is not a valid safetensors file ({_short(e)}); pickle or torch.save files "
                              f"are never loaded") from None


def _verify_manifest(path: Path) -> None:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path / 'manifest.json'} is unreadable ({_short(e)})") from None
    if not isinstance(files, dict):
        raise CheckpointError(f"{path / 'manifest.json'} is unreadable (files is not a name -> digest map)")
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {manifest.get('format')!r}; this version reads {FORMAT}")
    for name, want in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path} is incomplete: {name} is missing")
        if _digest(f) != want:
            raise CheckpointError(f"{f} is corrupt (size or checksum differs from manifest.json)")


def _digest(file: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"sha256": h.hexdigest(), "size": file.stat().st_size}


def _write_json(file: Path, obj: Any) -> None:
    with open(file, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _fsync(file: Path) -> None:
    with open(file, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
