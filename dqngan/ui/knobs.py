"""The hyper-parameter controls of the Train tab, and the mapping between their values and a `Config`.

The controls cover the knobs people want to play with; every other config key rides along in a per-session dict
(the preset's or a restored JSON's full config), so a run is always built from a complete, validated Config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..config import LIVE_KEYS, PRESETS, Config, ConfigError, make_config

LOCK_NOTE = ("Greyed-out knobs change the networks, the data or the environment, so they are locked while "
             "training. Pause, then Reset to start a new run with new values. Knobs marked *live* change at once.")
LOCK_TIP = "Locked while training: this knob changes the networks, data or environment. Pause, then Reset to apply."


@dataclass(frozen=True)
class Knob:
    key: str  # the control's name (its live event is api_name set_<key>); the config key unless `cfg_key` is set
    label: str
    widget: str  # slider | number | dropdown | radio | checkbox
    group: str
    kwargs: dict = field(default_factory=dict)
    cfg_key: str = ""

    @property
    def field(self) -> str:
        return self.cfg_key or self.key

    @property
    def live(self) -> bool:
        return self.field in LIVE_KEYS


KNOBS: tuple[Knob, ...] = (
    Knob("dataset", "dataset", "dropdown", "Model & data",
         {"choices": ["mnist5k", "mnist", "fashion-mnist"], "allow_custom_value": True}),
    Knob("loss", "GAN loss", "radio", "Model & data", {"choices": ["ns", "wgan-gp", "hinge"]}),
    Knob("width", "model width", "slider", "Model & data", {"minimum": 0.0625, "maximum": 1.0, "step": 0.0625}),
    Knob("seed", "seed", "number", "Model & data", {"precision": 0, "minimum": 0}),
    Knob("lr_g", "learning rate G", "number", "GAN", {"minimum": 0, "maximum": 1, "step": 1e-4}),
    Knob("lr_d", "learning rate D", "number", "GAN", {"minimum": 0, "maximum": 1, "step": 1e-4}),
    Knob("n_critic", "n_critic (D steps per G step)", "slider", "GAN", {"minimum": 1, "maximum": 10, "step": 1}),
    # A checkbox, not g_every's number: "is G learning?" is the question a class asks; off = the agent phase.
    Knob("train_g", "train G (off: G frozen, only D and the agent learn)", "checkbox", "GAN", cfg_key="g_every"),
    Knob("fid_every", "FID every N steps (0 = off)", "number", "GAN", {"precision": 0, "minimum": 0}),
    Knob("refined_frac", "refined fraction of D's fakes", "slider", "GAN", {"minimum": 0, "maximum": 1, "step": 0.05}),
    Knob("n_dirs", "K directions", "slider", "Agent", {"minimum": 1, "maximum": 32, "step": 1}),
    Knob("delta", "δ step size", "slider", "Agent", {"minimum": 0.05, "maximum": 2.0, "step": 0.05}),
    Knob("horizon", "T horizon", "slider", "Agent", {"minimum": 1, "maximum": 32, "step": 1}),
    Knob("lam_prior", "λ prior weight", "slider", "Agent", {"minimum": 0, "maximum": 2, "step": 0.05}),
    Knob("beta_goal", "β goal weight", "slider", "Agent", {"minimum": 0, "maximum": 5, "step": 0.1}),
    Knob("q_state", "agent's view (what Q sees besides z)", "radio", "Agent",
         {"choices": ["z", "features", "score", "grad"]}),
    Knob("q_lr", "Q learning rate", "number", "Agent", {"minimum": 0, "maximum": 1, "step": 1e-4}),
    Knob("agent_every", "agent step every N GAN steps (0 = off)", "slider", "Agent",
         {"minimum": 0, "maximum": 16, "step": 1}),
    Knob("eps_start", "ε start", "slider", "Exploration", {"minimum": 0, "maximum": 1, "step": 0.01}),
    Knob("eps_end", "ε end", "slider", "Exploration", {"minimum": 0, "maximum": 1, "step": 0.01}),
    Knob("eps_decay", "ε decay (agent steps)", "number", "Exploration", {"precision": 0, "minimum": 1}),
)
KEYS: tuple[str, ...] = tuple(k.key for k in KNOBS)
FROZEN: tuple[str, ...] = tuple(k.key for k in KNOBS if not k.live)
LIVE: tuple[str, ...] = tuple(k.key for k in KNOBS if k.live)
BY_KEY: dict[str, Knob] = {k.key: k for k in KNOBS}
GROUPS: tuple[str, ...] = ("Model & data", "GAN", "Agent", "Exploration")


def make_widget(knob: Knob, value: Any) -> gr.components.Component:
    label = knob.label + (" · live" if knob.live else "")
    common = {"label": label, "info": Config.doc(knob.field), "elem_id": f"knob-{knob.key}",
              "elem_classes": ["knob-live" if knob.live else "knob-frozen"]}
    if knob.widget == "slider":
        return gr.Slider(value=value, **knob.kwargs, **common)
    if knob.widget == "number":
        return gr.Number(value=value, **knob.kwargs, **common)
    if knob.widget == "dropdown":
        return gr.Dropdown(value=value, **knob.kwargs, **common)
    if knob.widget == "checkbox":
        return gr.Checkbox(value=value, **knob.kwargs, **common)
    return gr.Radio(value=value, **knob.kwargs, **common)


def preset_config(preset: str | None) -> Config:
    return make_config(preset if preset in PRESETS else None)


def build_config(base: dict | None, values: dict[str, Any]) -> Config:
    """The full Config: the session's base dict overlaid with the controls' values. Raises ConfigError."""
    d = dict(base or Config().to_dict())
    for k, v in values.items():
        if v is None:
            raise ConfigError(f"{k} is empty; enter a value")
        d.update(to_config(k, v, d))
    if d.get("loss") == "wgan-gp":
        d["d_norm"] = "none"  # the gradient penalty needs a per-sample critic (batch norm mixes samples)
    if d.get("n_dirs", 1) > d.get("z_dim", 100):
        raise ConfigError(f"K={d['n_dirs']} directions exceed z_dim={d['z_dim']}")
    return Config.from_dict(d)


def _coerce(key: str, v: Any) -> Any:
    """Gradio gives floats for integer sliders and numbers; the config wants exact types."""
    want = type(getattr(Config(), key))
    if want is int and isinstance(v, float):
        if not v.is_integer():
            raise ConfigError(f"{key} must be a whole number, got {v}")
        return int(v)
    if want is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def to_config(key: str, v: Any, base: dict) -> dict[str, Any]:
    """{config key: value} for one control's value (train G on keeps the base's G period, or 1)."""
    if key == "train_g":
        return {"g_every": (base.get("g_every") or 1) if v else 0}
    k = BY_KEY[key].field if key in BY_KEY else key
    return {k: _coerce(k, v)}


def value_of(key: str, d: dict) -> Any:
    if key == "train_g":
        return d["g_every"] > 0
    return d[BY_KEY[key].field]


def values_of(cfg: Config | dict) -> list[Any]:
    """The controls' values for a config, in KNOBS order."""
    d = cfg.to_dict() if isinstance(cfg, Config) else cfg
    return [value_of(k, d) for k in KEYS]


def control_values(settings: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Config settings (e.g. a lesson's) as control values, for the controls they touch."""
    merged = {**current, **settings}
    return {k.key: value_of(k.key, merged) for k in KNOBS if k.field in settings}


def live_values(values: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Config keys and values of the live controls among `values` (control name -> value)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if BY_KEY[k].live and v is not None:
            out.update(to_config(k, v, base))
    return out


def diff_frozen(run_cfg: dict, cfg: Config) -> list[str]:
    """Non-live config keys whose value differs from the run's (they only take effect on Reset)."""
    new = cfg.to_dict()
    return [f for f in (BY_KEY[k].field for k in FROZEN) if run_cfg.get(f) != new.get(f)]


def edits(values: dict[str, Any], origin: dict[str, Any]) -> dict[str, Any]:
    """The controls the user changed since they were last filled in (by a lesson, preset, load or Reset)."""
    return {k: v for k, v in values.items() if k in origin and v != origin[k]}


def inactive(cfg: Config) -> list[str]:
    """Shown controls that cannot affect this run right now, each with the reason (so no knob silently does
    nothing)."""
    out = []
    if cfg.g_every == 0:
        out.append("learning rate G (G is frozen: tick *train G*)")
    if cfg.agent_every == 0:
        out.append("the Agent and Exploration knobs and the refined fraction (the agent is off: "
                   "*agent step every N* = 0)")
    elif cfg.beta_goal == 0:
        out.append("goal digits (β = 0: the reward has no class term)")
    if cfg.fid_every == 0:
        out.append("the FID chart (FID every N steps = 0)")
    return out


def recipe_for(config: Config | dict, origin: Config | dict, preset: str | None = None,
               lesson: str | None = None) -> dict:
    """What Reset builds and the share link names: `config` (a preset's or lesson's start config) and the control
    values the knobs were last filled with (`origin`), so the knobs the user changed since are known. Reset never
    inherits a loaded model's hidden settings (the shipped checkpoint froze G): it starts from `config`."""
    cfg = config.to_dict() if isinstance(config, Config) else dict(config)
    return {"config": cfg, "origin": dict(zip(KEYS, values_of(origin))), "preset": preset, "lesson": lesson}


def edited(recipe: dict, vals: tuple) -> dict[str, Any]:
    """The controls (name -> value) the user changed since the knobs were last filled in."""
    return edits(dict(zip(KEYS, vals)), recipe.get("origin") or {})
