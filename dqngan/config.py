"""All hyper-parameters in one flat dataclass (CleanRL style), plus presets and `key=value` overrides.

Flat keys keep the CLI (`--set lr_g=5e-4`), the app's knobs and `config.json` one and the same vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range (message is one line)."""


def _f(default: Any, doc: str, lo: float | None = None, hi: float | None = None, choices: tuple | None = None,
       live: bool = False) -> Any:
    meta = {"doc": doc, "lo": lo, "hi": hi, "choices": choices, "live": live}
    return field(default=default, metadata=meta)


@dataclass
class Config:
    # --- data and models ---
    dataset: str = _f("mnist5k", "dataset: mnist5k (embedded), mnist, fashion-mnist (Hub), or a folder of images")
    z_dim: int = _f(100, "dimension of the latent z ~ N(0, I)", 2, 512)
    width: float = _f(0.25, "channel multiplier of the canonical 28x28 DCGAN (1.0 = 256/128/64 channels)", 0.0625, 2.0)
    d_norm: str = _f("batch", "discriminator normalisation (WGAN-GP needs 'none')", choices=("batch", "none"))
    # --- GAN training ---
    loss: str = _f("ns", "GAN loss: non-saturating, WGAN-GP or hinge", choices=("ns", "wgan-gp", "hinge"))
    n_critic: int = _f(1, "D steps per G step", 1, 20)
    g_every: int = _f(1, "one G step every N iterations (0 freezes G: the agent-training phase)", 0, 10**6, live=True)
    gp_weight: float = _f(10.0, "gradient-penalty weight (WGAN-GP only)", 0.0, 1000.0)
    batch_size: int = _f(64, "GAN batch size", 1, 4096)
    lr_g: float = _f(8e-4, "generator learning rate (Adam)", 0.0, 1.0, live=True)
    lr_d: float = _f(8e-4, "discriminator learning rate (Adam)", 0.0, 1.0, live=True)
    beta1: float = _f(0.5, "Adam beta1 for G and D", 0.0, 0.9999)
    beta2: float = _f(0.999, "Adam beta2 for G and D", 0.0, 0.99999)
    real_label: float = _f(1.0, "lower end of one-sided label smoothing: real targets ~ U(real_label, 1)", 0.5, 1.0)
    ema_decay: float = _f(0.99, "decay of the EMA copy of G used for samples and by the agent", 0.0, 0.99999)
    refined_frac: float = _f(0.25, "fraction of D's fake batch that is agent-refined G(z_T)", 0.0, 1.0, live=True)
    # --- latent environment ---
    directions: str = _f("sefa", "latent directions: SeFa, GANSpace-style PCA, random or coordinate axes",
                         choices=("sefa", "pca", "random", "axis"))
    n_dirs: int = _f(8, "K, the number of directions (2K+1 actions)", 1, 64)
    delta: float = _f(0.5, "step size in units of each direction's standard deviation", 0.0, 5.0)
    horizon: int = _f(8, "T, the maximum number of moves per episode", 1, 256)
    lam_prior: float = _f(0.3, "lambda: weight of the prior term -1/2 |z|^2 in the potential", 0.0, 100.0, live=True)
    beta_goal: float = _f(0.0, "beta: weight of log p_C(goal | G(z)) in the potential (0 = no goals)", 0.0, 100.0,
                          live=True)
    dbar_tau: float = _f(0.01, "Polyak rate of the slow reward discriminator D-bar", 0.0, 1.0)
    dirs_every: int = _f(500, "recompute the directions every N GAN steps while G trains", 1, 10**9)
    # --- DQN agent ---
    n_envs: int = _f(64, "environments stepped at once (one G and one D forward for all)", 1, 4096)
    q_state: str = _f("features", "what the Q-network sees besides (z, t/T, goal): nothing, D_bar's features of G(z) "
                      "or Phi(z) and D_bar's logit (one G+D forward per step), or Phi's slope along each direction "
                      "(plus one backward)", choices=("z", "features", "score", "grad"))
    q_targets: str = _f("sampled", "DQN targets for the sampled action only, or for all 2K+1 actions of each state "
                        "(the latent env is a known model; costs 2K+1 G+D evals per state)",
                        choices=("sampled", "all"), live=True)
    q_hidden: int = _f(256, "width of the Q-network's two hidden layers", 8, 4096)
    q_lr: float = _f(5e-4, "Q-network learning rate (Adam)", 0.0, 1.0, live=True)
    gamma: float = _f(0.95, "discount factor", 0.0, 1.0)
    q_tau: float = _f(0.005, "Polyak rate of the target Q-network", 0.0, 1.0)
    q_batch: int = _f(64, "DQN minibatch size", 1, 4096)
    buffer_size: int = _f(50_000, "replay capacity in transitions", 1, 10**7)
    learning_starts: int = _f(1000, "transitions stored before the first DQN update", 0, 10**8)
    grad_clip: float = _f(10.0, "max gradient norm for the Q-network", 0.0, 1e6)
    eps_start: float = _f(1.0, "initial epsilon of the epsilon-greedy policy", 0.0, 1.0, live=True)
    eps_end: float = _f(0.05, "final epsilon", 0.0, 1.0, live=True)
    eps_decay: int = _f(3000, "agent steps over which epsilon decays linearly", 1, 10**9, live=True)
    # --- the joint loop ---
    agent_every: int = _f(8, "one env step + DQN update every N GAN steps (0 = GAN only)", 0, 10**6, live=True)
    dqn_updates: int = _f(1, "DQN gradient steps per agent step", 0, 100, live=True)
    agent_start: int = _f(0, "GAN step at which the agent starts acting", 0, 10**9)
    # --- bookkeeping ---
    seed: int = _f(0, "random seed", 0, 2**31 - 1)
    log_every: int = _f(10, "record scalar metrics every N steps", 1, 10**6, live=True)
    step_delay: float = _f(0.0, "seconds the background thread waits after each step (the app's slow speed)", 0.0,
                           10.0, live=True)
    grid_every: int = _f(100, "record sample grids every N steps", 1, 10**6, live=True)
    fid_every: int = _f(500, "compute FID every N steps (0 = never)", 0, 10**9, live=True)
    fid_n: int = _f(1000, "samples used for FID during training", 10, 100_000)
    history_len: int = _f(2000, "max points per history series (older points are thinned)", 10, 10**6)
    amp: bool = _f(True, "bfloat16 autocast on CUDA (ignored elsewhere)")
    cuda_graphs: bool = _f(True, "on CUDA, replay each macro-step (agent_every GAN steps + one agent step) as one "
                           "captured CUDA graph (false = eager; ignored elsewhere)")

    # ---------------------------------------------------------------------------------------------------
    def validate(self) -> Config:
        for f in fields(self):
            v = getattr(self, f.name)
            m = f.metadata
            want = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str,
                                                             "bool": bool}[f.type]
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
                setattr(self, f.name, v)
            if not isinstance(v, want) or (want is int and isinstance(v, bool)):
                raise ConfigError(f"{f.name} must be {want.__name__}, got {v!r}")
            if want is float and not math.isfinite(v):
                raise ConfigError(f"{f.name} must be a finite number, got {v!r}")
            if m["choices"] and v not in m["choices"]:
                raise ConfigError(f"{f.name} must be one of {', '.join(m['choices'])}; got {v!r}")
            if m["lo"] is not None and v < m["lo"]:
                raise ConfigError(f"{f.name} must be >= {m['lo']}, got {v!r}")
            if m["hi"] is not None and v > m["hi"]:
                raise ConfigError(f"{f.name} must be <= {m['hi']}, got {v!r}")
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ConfigError("loss=wgan-gp needs d_norm=none (batch norm breaks the per-sample gradient penalty)")
        if self.eps_end > self.eps_start:
            raise ConfigError("eps_end must be <= eps_start")
        return self

    def replace(self, **changes: Any) -> Config:
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        if not isinstance(d, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**d).validate()

    @classmethod
    def doc(cls, name: str) -> str:
        return {f.name: f.metadata["doc"] for f in fields(cls)}[name]


LIVE_KEYS = frozenset(f.name for f in fields(Config) if f.metadata["live"])

# Presets only name what differs from the defaults (the defaults are the CPU preset).
PRESETS: dict[str, dict[str, Any]] = {
    # Small and fast: recognisable digits within minutes on 2 cores.
    "cpu": {},
    # Tiny, for tests and smoke runs.
    "tiny": {"width": 0.125, "batch_size": 16, "n_envs": 8, "q_hidden": 32, "q_batch": 16, "learning_starts": 16,
             "buffer_size": 2000, "fid_n": 200, "fid_every": 0, "grid_every": 10, "log_every": 1, "agent_every": 1,
             "eps_decay": 100, "dirs_every": 50},
    # Full-width canonical DCGAN hyper-parameters (algorithms.md section 4), plus the agent.
    "canonical": {"width": 1.0, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.5, "real_label": 0.8,
                  "ema_decay": 0.0},
    # Bigger and longer: for a GPU.
    "gpu": {"width": 1.0, "batch_size": 128, "lr_g": 2e-4, "lr_d": 2e-4, "n_envs": 256, "q_batch": 256,
            "agent_every": 1, "fid_n": 2000, "eps_decay": 20000, "ema_decay": 0.999},
    "wgan-gp": {"loss": "wgan-gp", "d_norm": "none", "n_critic": 5, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0,
                "beta2": 0.9},
    "hinge": {"loss": "hinge"},
    # The agent phase (use with --resume): G frozen, D re-fitted without label smoothing at a low learning rate on
    # real vs raw and agent-refined fakes (calibration + shaping), and the agent acting every step.
    "agent": {"g_every": 0, "real_label": 1.0, "lr_d": 1e-4, "agent_every": 1, "refined_frac": 0.5},
}


def parse_value(text: str) -> Any:
    """Parse the value of a `key=value` override as JSON when possible, else keep the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "nan":
        return float("nan")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def make_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults <- preset <- overrides, validated."""
    base: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        base.update(PRESETS[preset])
    base.update(overrides or {})
    return Config.from_dict(base)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        if not k.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[k.strip()] = parse_value(v)
    return out
