"""Classroom: lesson presets, the "explain" text of every chart, config JSON copy / restore, and URL query strings.

A lesson only sets *live* knobs on top of whatever model the app opened on, so on the pretrained checkpoint Train
continues from it instead of starting over.
"""

import json
from typing import Any

import gradio as gr

from ..config import PRESETS, Config, ConfigError
from . import knobs
from .feedback import UserError, guard

LESSONS: dict[str, dict[str, Any]] = {
    "1. What a GAN learns": {
        "set": {"agent_every": 0, "refined_frac": 0.0, "lr_g": 8e-4, "lr_d": 8e-4},
        "text": """**The generator G turns noise z into images; the discriminator D scores real vs generated.**

Press **Train** and watch three things:
1. *discriminator rewards*: D(x) real (blue) starts high and D(G(z)) (red) low; as G improves they move towards
   each other. If the red line sinks forever, D is winning and G gets no useful signal.
2. *losses*: they do **not** go to zero in a healthy GAN; they settle while the two networks keep competing.
3. *samples*: the grid is drawn from the same fixed noise every time, so you see the *same* z turn from blobs into
   digits. Scrub the timeline slider, or download the GIF.

Try: raise *learning rate D* (live) to 5e-3 and watch D overpower G; set it back.""",
    },
    "2. What the Q-values mean": {
        "set": {"agent_every": 1, "eps_start": 1.0, "eps_end": 0.05, "eps_decay": 1000, "lam_prior": 0.3,
                "beta_goal": 0.0, "refined_frac": 0.25},
        "text": """**The agent moves z one step of δ along a direction (or stops); its reward is how much the slow
discriminator D̄ likes the new image better.** Q(s, a) is the return it expects after taking action a in state s.

- *Q-values now*: one bar per action; the red bar is the greedy choice. **stop** is the grey bar: when it is the
  highest, the agent thinks no move improves the image.
- *Q over training*: rows are actions, columns time. Early on all values are ~0 (nothing learnt); then a few
  directions stand out.
- *ε*: the chance of a random action; it decays, and the episode return should rise as it does.

Then open **Explore**: move a slider, and the bars update for that z. Press *agent step* to take the red action.""",
    },
    "3. Steering towards a digit": {
        "set": {"beta_goal": 1.0, "agent_every": 1, "eps_decay": 2000, "lam_prior": 0.3},
        "text": """**With β > 0 the reward adds β·log p(goal | image) from a digit classifier**, so the agent learns
goal-conditioned moves: the goal digit is part of its state.

Train a while (β is live), then go to **Explore** or **Draw**, pick a *goal digit* and press *agent rollout*: the
frames show z being pushed towards that digit, and the potential Φ rising step by step. Compare β = 0 (the agent
only chases realism) with β = 2 (it may trade realism for the class).""",
    },
}

EXPLAIN: dict[str, str] = {
    "loss": "D loss and G loss trade off: when one falls the other rises. A D loss near 0 for long means D wins "
            "and G's gradients vanish. TD loss (right axis) is the agent's Bellman error: it should shrink as the "
            "Q-network fits, and jump when the rewards change (D̄ keeps moving).",
    "reward": "D scores are logits (> 0: looks real). D(G(z_T)) are images after the agent's moves: if the agent "
              "helps, this line sits above D(G(z)). Episode return (right axis) = Φ(z_T) − Φ(z_0), the total "
              "improvement the agent achieved per episode.",
    "q": "One bar per action at a fixed set of probe latents (t = 0, no goal). Red = the greedy action. If 'stop' "
         "is highest, the agent thinks the images can't be improved by one move.",
    "qheat": "Each row is an action, each column a moment in training; colour is the mean Q. Watch structure "
             "appear: some directions become consistently good (red) or bad (blue).",
    "eps": "ε-greedy: with probability ε the agent acts randomly (exploring). It decays linearly from ε start to "
           "ε end over 'ε decay' agent steps; ε is a live knob.",
    "fid": "Fréchet distance between features of real and generated digits from a small MNIST classifier (not "
           "Inception). Lower is better; only compare values from the same app. Computed every fid_every steps.",
    "grid": "The same 64 noise vectors every time: left as G draws them, right after the agent's greedy moves. "
            "Drag the timeline slider to go back in training; untick 'follow latest' stays there.",
    "explore": "z = z(seed) + Σ αᵢ·dᵢ: each slider moves along one direction dᵢ (unit length, so 1 = one standard "
               "deviation). The bars are the agent's Q for each action at this z; red is what it would do.",
    "map": "Φ (the agent's potential: D̄ logit − λ|z|²/2 + β log p(goal)) over the plane of two directions through "
           "z. Bright = better. The red path is the agent's last rollout: good agents climb the gradient.",
    "draw": "Your drawing is projected: we search for the z whose G(z) looks most like it (gradient descent on z), "
            "then the agent refines that z step by step (optionally towards a goal digit).",
}


def apply_lesson(name: str, base: dict, *vals: Any) -> tuple:
    """The knob values with the lesson's settings applied, and its explanation."""
    if name not in LESSONS:
        raise UserError(f"unknown lesson {name!r}")
    values = dict(zip(knobs.KEYS, vals))
    values.update(LESSONS[name]["set"])
    return (LESSONS[name]["text"], *[values[k] for k in knobs.KEYS])


def config_json(base: dict, *vals: Any) -> str:
    return knobs.build_config(base, dict(zip(knobs.KEYS, vals))).to_json()


def restore_json(text: str) -> tuple:
    try:
        d = json.loads(text or "")
    except json.JSONDecodeError as e:
        raise UserError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(d, dict):
        raise UserError("the config must be a JSON object like {\"lr_g\": 0.0002, ...}")
    try:  # a partial config is completed with the defaults
        cfg = Config.from_dict({**Config().to_dict(), **d})
    except (ConfigError, TypeError) as e:
        raise UserError(f"cannot restore this config: {e}") from None
    return (cfg.to_dict(), *knobs.values_of(cfg))


def from_query(params: dict[str, str], base: Config) -> tuple[Config, str | None]:
    """?preset=tiny&seed=3&lesson=2 -> (config, lesson name). Unknown or bad values raise UserError."""
    cfg = base
    if "preset" in params:
        if params["preset"] not in PRESETS:
            raise UserError(f"unknown preset {params['preset']!r} in the URL; choose from {', '.join(PRESETS)}")
        cfg = knobs.preset_config(params["preset"])
    if "seed" in params:
        try:
            cfg = cfg.replace(seed=int(params["seed"]))
        except (ValueError, ConfigError) as e:
            raise UserError(f"bad seed in the URL: {e}") from None
    lesson = None
    if "lesson" in params:
        want = params["lesson"]
        lesson = next((k for k in LESSONS if k.split(".")[0] == want or k == want), None)
        if lesson is None:
            raise UserError(f"unknown lesson {want!r} in the URL (use 1, 2 or 3)")
        cfg = cfg.replace(**LESSONS[lesson]["set"])
    return cfg, lesson


def build(train: Any) -> dict:
    """The Classroom accordion: lesson picker, explanation, config JSON and a shareable link."""
    knob_list = [train.knobs[k] for k in knobs.KEYS]
    with gr.Accordion("📚 Classroom: lessons, config JSON, share link", open=False, elem_id="classroom") as box:
        with gr.Row():
            lesson = gr.Dropdown(list(LESSONS), value=None, label="lesson", elem_id="lesson", scale=2)
            share = gr.Textbox(label="share link query (preset + seed)", elem_id="share-query", scale=2,
                               interactive=False, buttons=["copy"])
        text = gr.Markdown("Pick a lesson: it sets the knobs and explains what to watch.", elem_id="lesson-text")
        with gr.Row():
            copy_btn = gr.Button("Show config as JSON", elem_id="config-copy-btn")
            restore_btn = gr.Button("Restore config from JSON", elem_id="config-restore-btn")
        code = gr.Code(language="json", label="config (copy it, or paste one and press Restore)", lines=8,
                       interactive=True, elem_id="config-json", buttons=["copy"])

    lesson.input(guard(1 + len(knob_list))(apply_lesson), [lesson, train.base_cfg, *knob_list], [text, *knob_list],
                 api_name="lesson")
    copy_btn.click(guard(1)(config_json), [train.base_cfg, *knob_list], [code], api_name="config_json")
    restore_btn.click(guard(1 + len(knob_list))(restore_json), [code], [train.base_cfg, *knob_list],
                      api_name="restore_config")

    def share_query(preset: str | None, seed: Any) -> str:
        q = [f"preset={preset}"] if preset else []
        if seed is not None:
            q.append(f"seed={int(seed)}")
        return "?" + "&".join(q)

    for w in (train.preset, train.knobs["seed"]):
        w.change(share_query, [train.preset, train.knobs["seed"]], [share], api_visibility="undocumented",
                 show_progress="hidden")
    return {"lesson": lesson, "text": text, "share": share, "box": box}
