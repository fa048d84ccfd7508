"""Classroom: the lessons and the run each starts on, the "explain" text of every chart, config JSON copy /
restore, share links and URL query strings.
"""

import json
from typing import Any
from urllib.parse import urlencode

import gradio as gr

from ..config import PRESETS, Config, ConfigError, parse_value
from . import knobs
from .feedback import UserError, guard, readable, warn

# Each lesson names the run it starts on, so the class sees what the text promises (a lesson that only set knobs on
# whatever model was open froze G on the agent-phase checkpoint). "start": fresh (a new model of `preset`), agent (the
# shipped GAN of `checkpoint` with a fresh agent), checkpoint (the shipped run as saved). "set" overrides its config.
LESSONS: dict[str, dict[str, Any]] = {
    "1. What a GAN learns": {
        "start": "fresh", "preset": "cpu",
        "set": {"agent_every": 0, "refined_frac": 0.0, "grid_every": 25, "log_every": 5, "fid_every": 250},
        "summary": "a fresh, untrained GAN (cpu preset, agent off)",
        "text": """**The generator G turns noise z into images; the discriminator D scores real vs generated.**
This lesson starts on a *fresh, untrained* GAN. Press **Train** and watch:

1. *samples*: the same 64 noise vectors are drawn every 25 steps. Measured on a 2-core CPU: grey noise for the
   first ~10 s, blobs by 20 s, digit-like strokes by 30 s, mostly readable digits by 1 minute, cleaner ones by
   2-3 minutes (FID 350 → 83 → 30). Scrub the timeline, or make the GIF.
2. *discriminator scores*: D(x) on real digits (blue, solid) and D(G(z)) on fakes (vermillion, dashed). D wins
   at first (the lines split); as G improves they come back towards each other.
3. *losses*: they do **not** go to zero in a healthy GAN; they settle while the two networks compete.

Try: raise *learning rate D* (live) to 0.005 and watch D overpower G (D loss near 0, G loss climbing); set it
back to 0.0008. Untick *train G* and the grid stops changing: only D learns.""",
    },
    "2. What the Q-values mean": {
        "start": "agent", "checkpoint": "mnist",
        # q_state grad (Φ's slope along each direction, the shipped agent's own view): in bench/lesson_times.py its
        # Q ranked the moves by their true reward better within 20 s than the image-features view did in 3 minutes
        "set": {"agent_every": 1, "q_state": "grad", "eps_start": 1.0, "eps_end": 0.05, "eps_decay": 1000,
                "learning_starts": 640, "log_every": 5, "grid_every": 50, "fid_every": 0},
        "summary": "the trained GAN (G frozen) with a fresh, untrained agent",
        "text": """**The agent moves z one step of δ along a direction (or stops); its reward is how much the slow
discriminator D̄ likes the new image better.** Q(s, a) is the return it expects after action a in state s.
This lesson starts on the *trained* GAN (G frozen: *train G* is off) with a *fresh* agent that knows nothing.

Press **Train** (about 15 agent steps a second on a 2-core CPU) and watch:
- *episode return* (discriminator chart, right axis): the Φ gained per episode. Near 0 while ε is high (random
  moves), it rises as ε decays over the first 1000 agent steps (about a minute).
- *Q per action over training*: the first columns are an untrained network's guesses; then rows settle into a
  pattern of moves the agent expects to help (red) or hurt (blue).
- *Q-values now*: one bar per action; the outlined orange bar (with the arrow) is the greedy choice. **stop**
  (grey) is highest when the agent thinks no move improves the image.
- Be honest with the class: after a few minutes this fresh agent ranks moves only roughly (its Q correlates about
  0.2 with each move's true gain); the shipped agent trained for GPU minutes.

Then open **Explore**: move a slider and the bars change for that z; *agent step* takes the greedy action.""",
    },
    "3. Steering towards a digit": {
        "start": "checkpoint", "checkpoint": "mnist-goals", "set": {}, "goal": 7, "seed": 0, "tab": "explore",
        "summary": "the shipped goal-steering agent (checkpoints/mnist-goals), goal 7 picked",
        "text": """**With β > 0 the reward adds β·log p(goal | image) from a digit classifier**, so the agent learns
goal-conditioned moves: the goal digit is part of its state. This lesson loads the shipped goal agent
(`checkpoints/mnist-goals`, trained for a few GPU minutes) — nothing needs training.

In **Explore**, seed 0 and goal **7** are already picked: press *agent rollout*. The frames show z being pushed
towards a 7 (about 5 moves, a second each) and Φ rising step by step; the random walk from the same z beside it
is the baseline. Then try other goals and seeds, open the *latent map* to see the path climb into the goal's
region, or **Draw** a digit and pick a goal. This agent only learnt *with* goals: it refuses goal "none".""",
    },
}
PRESET_INFO: dict[str, str] = {
    "cpu": "cpu: train a GAN from scratch, digits in ~3 min on 2 cores",
    "tiny": "tiny: a very small model for smoke tests",
    "canonical": "canonical: the full-width DCGAN paper settings (slow on a CPU)",
    "gpu": "gpu: full width, big batches (for a GPU)",
    "wgan-gp": "wgan-gp: Wasserstein loss with gradient penalty",
    "hinge": "hinge: hinge loss",
    "agent": "agent: G frozen, D re-fitted, the agent every step (continue a trained GAN)",
}


def lesson_named(want: str) -> str:
    """The lesson for '2', '2. What the Q-values mean' (the picker's value); UserError otherwise."""
    name = next((k for k in LESSONS if k.split(".")[0] == str(want).strip() or k == want), None)
    if name is None:
        raise UserError(f"unknown lesson {want!r} (use 1, 2 or 3)")
    return name


EXPLAIN: dict[str, str] = {
    "loss": "D loss and G loss trade off: when one falls the other rises. A D loss near 0 for long means D wins "
            "and G's gradients vanish. TD loss (right axis) is the agent's Bellman error: it should shrink as the "
            "Q-network fits, and jump when the rewards change (D̄ keeps moving).",
    "reward": "D scores are logits (> 0: looks real). D(x) is solid blue, D(G(z)) dashed vermillion, D(G(z_T)) "
              "dotted green: the images after the agent's moves. If the agent helps, the dotted line sits above the "
              "dashed one. Episode return (right axis) = Φ(z_T) − Φ(z_0), the total "
              "improvement the agent achieved per episode.",
    "q": "One bar per action at a fixed set of probe latents (t = 0, no goal). The outlined orange bar with the "
         "'greedy' arrow is the greedy action (even when its Q is ~0 and the bar has no height). If 'stop' is "
         "highest, the agent thinks the images can't be improved by one move.",
    "qheat": "Each row is an action, each column a moment in training; colour is the mean Q, smoothed along time "
             "with the smoothing slider. Watch structure "
             "appear: some directions become consistently good (red) or bad (blue).",
    "eps": "ε-greedy: with probability ε the agent acts randomly (exploring). It decays linearly from ε start to "
           "ε end over 'ε decay' agent steps, and starts again at ε start when a new agent starts (the shipped "
           "model's history shows its agent phases as jumps); ε is a live knob.",
    "fid": "Fréchet distance between features of real and generated digits from a small MNIST classifier (not "
           "Inception). Lower is better; only compare values from the same app. Computed every 'FID every N "
           "steps' (0 = off, and this chart stays as it was).",
    "grid": "The same 64 noise vectors every time: left as G draws them, right after the agent's greedy moves. "
            "Drag the timeline slider to go back in training; untick 'follow latest' stays there.",
    "explore": "z = z(seed) + Σ αᵢ·dᵢ: each slider moves along one direction dᵢ (unit length, so 1 = one standard "
               "deviation). The bars are the agent's Q for each action at this z; the outlined orange bar with the "
               "arrow is what it would do.",
    "map": "Φ (the agent's potential: D̄ logit − λ|z|²/2 + β log p(goal)) over the plane of two directions through "
           "z. Bright = better. The vermillion path (a white dot at its start) is the agent's last rollout: good "
           "agents climb the gradient.",
    "draw": "Your drawing is projected: we search for the z whose G(z) looks most like it (gradient descent on z), "
            "then the agent refines that z step by step (optionally towards a goal digit).",
}


def config_json(base: dict, *vals: Any) -> str:
    return knobs.build_config(base, dict(zip(knobs.KEYS, vals))).to_json()


def restore_json(text: str) -> Config:
    try:
        d = json.loads(text or "")
    except json.JSONDecodeError as e:
        raise UserError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(d, dict):
        raise UserError("the config must be a JSON object like {\"lr_g\": 0.0002, ...}")
    try:  # a partial config is completed with the defaults
        return Config.from_dict({**Config().to_dict(), **d})
    except (ConfigError, TypeError) as e:
        raise UserError(f"cannot restore this config: {e}") from None


# What teacher mode can hide (?hide=knobs,models): name -> what the class then does not see (demo.py's CSS).
HIDEABLE: dict[str, str] = {"knobs": "the knob panel", "explain": "the chart explainers", "intro": "the intro line",
                            "reset": "the Reset button", "explore": "the Explore tab", "draw": "the Draw tab",
                            "models": "the Models tab", "classroom": "this Classroom panel"}
KEYS_HELP = ("Keyboard: <kbd>space</kbd> Train / Pause · <kbd>→</kbd> Step · <kbd>D</kbd> / <kbd>G</kbd> / "
             "<kbd>A</kbd> step D, G or the agent alone · <kbd>S</kbd> slow-motion step, <kbd>N</kbd> its next "
             "sub-step · <kbd>R</kbd> Reset (asks first) — not while typing in a field.")
# Query-string keys besides the knobs' own names (see share_query).
QUERY_KEYS = ("lesson", "preset", "layout", "hide", "watch")


def knob_params(params: dict[str, str]) -> dict[str, Any]:
    """The knob settings in a query string (control name -> value), e.g. lr_d=0.005&train_g=false."""
    unknown = sorted(set(params) - set(QUERY_KEYS) - set(knobs.KEYS))
    if unknown:
        raise UserError(f"unknown setting(s) in the URL: {', '.join(unknown)}")
    return {k: parse_value(v) for k, v in params.items() if k in knobs.KEYS}


def from_query(params: dict[str, str], base: Config) -> tuple[Config, str | None]:
    """?preset=tiny&seed=3&lr_d=0.005&lesson=2 -> (config, lesson name). Unknown or bad values raise UserError.

    The config is the preset's (or `base`) with the URL's knob values; with a lesson, its own settings apply first."""
    cfg = base
    if "preset" in params:
        if params["preset"] not in PRESETS:
            raise UserError(f"unknown preset {params['preset']!r} in the URL; choose from {', '.join(PRESETS)}")
        cfg = knobs.preset_config(params["preset"])
    lesson = lesson_named(params["lesson"]) if "lesson" in params else None
    if lesson is not None:
        start = LESSONS[lesson]
        cfg = cfg.replace(**{k: v for k, v in start["set"].items()})
    try:
        cfg = knobs.build_config(cfg.to_dict(), knob_params(params))
    except (ConfigError, TypeError, KeyError) as e:
        raise UserError(f"bad setting in the URL: {e}") from None
    return cfg, lesson


def hide_param(hide: list[str] | None) -> str | None:
    """The ?hide= value for the teacher-mode checklist (known names only, in a stable order)."""
    names = [k for k in HIDEABLE if k in (hide or [])]
    return ",".join(names) or None


def share_query(rec: dict, vals: tuple, present: bool = False, hide: list[str] | None = None) -> str:
    """The query string that reproduces this set-up: the lesson (or preset), the seed and every knob the user
    changed since the lesson, preset or model filled the knobs in; the layout and teacher mode's hidden parts."""
    values = dict(zip(knobs.KEYS, vals))
    q: dict[str, Any] = {}
    if rec.get("lesson"):
        q["lesson"] = rec["lesson"].split(".")[0]
    elif rec.get("preset"):
        q["preset"] = rec["preset"]
    changed = knobs.edits(values, rec.get("origin") or {})
    q["seed"] = values.get("seed")
    q.update({k: v for k, v in changed.items() if k != "seed"})
    if present:
        q["layout"] = "present"
    q["hide"] = hide_param(hide)
    return "?" + urlencode({k: json.dumps(v) if isinstance(v, bool) else v for k, v in q.items() if v is not None},
                           safe=",")


# ------------------------------------------------------------------------------------------------ the panel
def build_panel() -> dict:
    """The Classroom panel (top of the page): lesson picker, its text, the share link, config JSON."""
    with gr.Accordion("Classroom: guided lessons, share link, presentation layout", open=True,
                      elem_id="classroom") as box:
        with gr.Row():
            lesson = gr.Dropdown(list(LESSONS), value=None, label="lesson: sets up the model the lesson needs",
                                 elem_id="lesson", scale=2)
            present = gr.Checkbox(False, label="presentation layout (for a projector)", elem_id="present-box",
                                  scale=1)
        text = gr.Markdown("Pick a lesson: it loads the model the lesson needs, sets the knobs and explains what to "
                           "watch. Or press **Train** below to continue the shipped model.", elem_id="lesson-text")
        gr.HTML(f'<p id="keys-help">{KEYS_HELP}</p>')
        with gr.Accordion("share links for the class, config as JSON", open=False, elem_id="share-box"):
            with gr.Row():
                share_btn = gr.Button("Make share links", elem_id="share-btn", scale=1)
                share = gr.Textbox(label="set-up link: opens this lesson, preset, seed and every knob you changed",
                                   elem_id="share-query", scale=3, interactive=False, buttons=["copy"])
                students = gr.Textbox(label="students' link: watch the run that trains here, read-only",
                                      elem_id="students-link", scale=2, interactive=False, buttons=["copy"])
            hide = gr.CheckboxGroup([(v, k) for k, v in HIDEABLE.items()], label="teacher mode: hide from the class "
                                    "(both links carry it)", elem_id="hide-box")
            with gr.Row():
                copy_btn = gr.Button("Show config as JSON", elem_id="config-copy-btn")
                restore_btn = gr.Button("Restore config from JSON", elem_id="config-restore-btn")
            code = gr.Code(language="json", label="config (copy it, or paste one and press Restore)", lines=8,
                           interactive=True, elem_id="config-json", buttons=["copy"])
    return {"lesson": lesson, "text": text, "share": share, "students": students, "share_btn": share_btn, "box": box,
            "present": present, "hide": hide,
            "copy_btn": copy_btn, "restore_btn": restore_btn, "code": code}


def wire(ctx: Any, panel: dict, train: Any, explore: dict, draw: dict, tabs: Any) -> dict:
    """The Classroom's events. Returns the page-load handler's pieces (`on_load`, its outputs)."""
    reg = ctx.registry
    knob_list = [train.knobs[k] for k in knobs.KEYS]
    lesson_outputs = [panel["text"], *train.fill_outputs, train.status, explore["seed"], explore["goal"],
                      draw["goal"], tabs]

    def start_lesson(sid: str, name: str, overrides: dict | None = None) -> tuple:
        """Give the session the lesson's run (replacing its own) and show the lesson's settings."""
        start = LESSONS[name]
        reg.unwatch(sid)
        number = name.split(".")[0]
        mine = reg.session(sid).run
        # The browser can send one pick twice (Gradio's dropdown fires `input` on the click and again on blur); on a
        # busy machine the second arrives after Train. Rebuilding then would swap the training run for an idle copy,
        # so a repeat pick keeps a run of this lesson that is untouched ("idle") or training.
        if mine is not None and mine.lesson == name and mine.runner.status in ("idle", "running") and not overrides:
            run = mine
            notice = (f"lesson {number} is already training; pause it and pick the lesson again to start it over"
                      if run.running else None)
        else:
            run = reg.own(sid, lambda: ctx.lesson_run(start, overrides), replace=True)
            run.lesson = name
            notice = None
        cfg = run.runner.cfg
        start_cfg = ctx.lesson_config(start)  # the recipe is the lesson's own start: the URL's changes are edits
        rec = knobs.recipe_for(start_cfg, start_cfg, start.get("preset"), name)
        reg.session(sid).notice = notice or f"lesson {number} ready: {start['summary']}; " + (
            "open Explore" if start.get("tab") == "explore" else "press Train")
        run.dirty = True
        run.refresh()
        goal = str(start["goal"]) if "goal" in start else gr.skip()
        return (start["text"], *train.fill(cfg, rec), train.status_of(sid), start.get("seed", gr.skip()), goal, goal,
                gr.update(selected=start.get("tab", "train")))

    @guard(len(lesson_outputs))
    def pick_lesson(name: str, request: gr.Request) -> tuple:
        if name not in LESSONS:
            raise UserError(f"unknown lesson {name!r}")
        return start_lesson(request.session_hash or "anon", name)

    panel["lesson"].input(pick_lesson, [panel["lesson"]], lesson_outputs, api_name="lesson").then(
        explore["sync"], explore["sync_inputs"], explore["sync_outputs"], api_visibility="undocumented")

    def share_link(rec: dict, present: bool, hide: list[str], request: gr.Request, *vals: Any) -> tuple[str, str]:
        """The set-up link, and the students' link: one training slot per CPU, so a class watches one run (a
        lesson link would build a model per student)."""
        query = share_query(rec, vals, bool(present), hide)
        watch = "?" + urlencode({k: v for k, v in (("watch", 1), ("layout", "present" if present else None),
                                                   ("hide", hide_param(hide))) if v is not None}, safe=",")
        host = (request.headers or {}).get("host") if request is not None else None
        if not host:
            return query, watch
        proto = (request.headers or {}).get("x-forwarded-proto", "http")
        return f"{proto}://{host}/{query}", f"{proto}://{host}/{watch}"

    panel["share_btn"].click(guard(2)(share_link), [train.recipe, panel["present"], panel["hide"], *knob_list],
                             [panel["share"], panel["students"]], api_name="share_link", show_progress="hidden")
    panel["present"].input(None, [panel["present"]], None, js=PRESENT_JS)
    panel["copy_btn"].click(guard(1)(config_json), [train.base_cfg, *knob_list], [panel["code"]],
                            api_name="config_json")

    @guard(len(train.fill_outputs))
    def restore(text: str) -> tuple:
        cfg = restore_json(text)
        return train.fill(cfg, knobs.recipe_for(cfg, cfg))

    panel["restore_btn"].click(restore, [panel["code"]], train.fill_outputs, api_name="restore_config")

    load_outputs = [*lesson_outputs, panel["lesson"]]

    def on_load(request: gr.Request) -> tuple:
        """A new page: register the session and set up what the URL asks for (?lesson=2&seed=3&lr_d=0.005...)."""
        sid = request.session_hash or "anon"
        sess = reg.session(sid)
        params = {k: v for k, v in dict(request.query_params or {}).items() if k not in ("__theme", "view")}
        if params.pop("watch", "0").lower() in ("1", "true", "yes"):
            sess.follow = True  # the poll keeps looking for a run to watch until this visitor trains their own
            sess.notice = ("watching the run that trains here (read-only)" if reg.watch(sid) is not None else
                           "nobody is training yet: this page follows the first run that starts")
        if not {k for k in params if k not in ("layout", "hide")}:
            return tuple(gr.skip() for _ in load_outputs)
        try:
            cfg, lesson = from_query(params, ctx.base_config())
            if lesson is None:
                preset = params.get("preset")
                start = knobs.preset_config(preset) if preset else ctx.base_config()
                reset_preset = preset or (ctx.preset if ctx.preset in PRESETS else "cpu")
                rec = knobs.recipe_for(knobs.preset_config(reset_preset), start, reset_preset)
                return (gr.skip(), *train.fill(cfg, rec), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                        gr.skip())
            overrides = {}
            for k, v in knob_params(params).items():
                overrides.update(knobs.to_config(k, v, cfg.to_dict()))
            return (*start_lesson(sid, lesson, overrides), lesson)
        except Exception as e:  # noqa: BLE001 - a bad link still opens the app, with the reason
            warn(readable(e))
            return tuple(gr.skip() for _ in load_outputs)

    return {"on_load": on_load, "load_outputs": load_outputs}


# Switches the page's layout class; the CSS in demo.py does the rest (knobs hidden, grid and two charts on top).
PRESENT_JS = """(on) => { document.body.classList.toggle('present', !!on);
  const u = new URL(window.location); if (on) u.searchParams.set('layout', 'present');
  else u.searchParams.delete('layout'); window.history.replaceState(null, '', u); }"""
