"""The Train tab: knobs, Train / Pause / Step / Reset, live charts, sample grids with a timeline, the status line.

Updates reach the browser through one gr.Timer tick per session (about once a second). The tick reads the run's
latest snapshot copy (kept fresh by the registry's refresher thread) and returns the status line plus three short
"keys"; a key that changed makes the browser fetch that group (charts, grid, knob locks), so nothing is rebuilt or
sent when nothing changed. Figures and grid images are cached per run, so many viewers cost one render.
"""

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..config import LIVE_KEYS, PRESETS, Config
from . import charts, images, knobs
from .context import AppContext
from .diagram import NARRATE_JS, latest_values, narration_json, svg
from .feedback import UserError, guard, readable, warn
from .lessons import EXPLAIN, PRESET_INFO
from .session import Busy, Run, config_core

POLL_SECONDS = 1.0
# While a run trains, a viewer's charts redraw at most this often. Each redraw remounts the changed Plotly charts in
# the browser (gr.Plot draws every new payload into a fresh div): on 2 shared cores that blocked the page's main
# thread for seconds, and a Pause click showed 10-14 s late. Status, readouts and the grid still follow every second.
CHART_SECONDS = 3.0
# The speed control: (seconds the trainer waits after each step, seconds between chart redraws, what it says).
SPEEDS: dict[str, tuple[float, float, str]] = {
    "slow": (0.5, 1.0, "slow: about 2 steps a second, charts every second, so a class can follow each step"),
    "normal": (0.0, CHART_SECONDS, f"normal: full speed, charts every {CHART_SECONDS:g} s"),
    "fast": (0.0, 10.0, "fast: full speed, charts redrawn only every 10 s (the grid and numbers still every second)"),
}
PARTS_HELP = ("D: its n_critic updates on real vs fake digits · G: one update against D · agent: one move in every "
              "episode, then its DQN update")
PART_DONE = {"d": "stepped D: n_critic D updates (G and the agent did not learn)",
             "g": "stepped G: one G update against the current D (D and the agent did not learn)",
             "agent": "stepped the agent: one move in every episode, then its DQN update(s) (none until replay holds "
                      "learning_starts transitions); G and D did not learn"}
WINDOWS: dict[str, int | None] = {"whole run": None, "last 2000 steps": 2000, "last 500 steps": 500}
GRID_SCALE = 2  # the 8x8 grids are sent at 2x, nearest-neighbour, so they stay crisp when shown large
LOSS = [("d_loss", "D loss"), ("g_loss", "G loss"), ("td_loss", "TD loss (agent, right axis)", "y2")]
REWARD = [("d_real", "D(x) real"), ("d_fake", "D(G(z))"), ("d_refined", "D(G(z_T)) agent-refined"),
          ("episode_return", "episode return (right axis)", "y2")]
# The big numbers above the charts: (history key, label), readable from the back of a classroom.
READOUTS = [("d_real", "D(x) real"), ("d_fake", "D(G(z))"), ("d_refined", "D(G(z_T))"), ("d_loss", "D loss"),
            ("g_loss", "G loss"), ("episode_return", "return"), ("fid", "FID")]
EPSILON = [("epsilon", "ε (exploration)")]
FID = [("fid", "FID (classifier features)")]
CHARTS = {"loss": LOSS, "reward": REWARD, "eps": EPSILON, "fid": FID}
GIF_DIR = Path(tempfile.gettempdir()) / "dqngan-ui-gifs"
# Grid PNGs are written once per (run, step) and handed to gr.Image as paths: given an array, Gradio re-encodes the
# PNG on every request to hash it (~30 ms for a grid), for every viewer.
GRID_DIR = Path(tempfile.gettempdir()) / "dqngan-ui-grids"
FILE_TTL = 3600.0  # seconds our temp files live (Gradio serves its own cached copy)


@dataclass
class TrainTab:
    knobs: dict[str, Any]
    preset: Any
    base_cfg: Any  # gr.State: the full config dict the knobs overlay
    recipe: Any  # gr.State: what Reset and the share link build from (see knobs.recipe_for)
    status: Any
    timer: Any
    fill: Any  # fill(cfg, recipe) -> values for fill_outputs: the knobs, base and recipe showing a config
    fill_outputs: list
    status_of: Any  # status_of(session id) -> the status line now


# ---------------------------------------------------------------------------------------------------- pure views
def fmt_duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s")


def status_text(run: Run, snap: dict, own: bool, notice: str | None = None) -> str:
    st = snap.get("status", "idle")
    # text symbols, not emoji: a machine without an emoji font shows emoji as empty boxes
    icon = {"running": "▶", "paused": "❚❚", "idle": "○", "stopped": "■", "error": "✖"}.get(st, "")
    eps = (snap.get("history", {}).get("epsilon") or {}).get("value") or [None]
    parts = [f"{icon} **{st}**", f"step {snap.get('step', 0):,}", f"{snap.get('steps_per_s', 0.0):.1f} steps/s",
             f"agent steps {snap.get('agent_steps', 0):,}"]
    if eps[-1] is not None:
        parts.append(f"ε {eps[-1]:.2f}")
    parts += [f"device {snap.get('device', '?')}", f"trained {fmt_duration(snap.get('elapsed', 0.0))}"]
    whose = "your run" if own else ("watching another visitor's run (read-only)" if run.owner else "shared model")
    lines = [" · ".join(parts), f"Model: {run.label} — {whose}"]
    if snap.get("error"):
        lines.append(f"⚠ **Training stopped with an error:** {snap['error']}")
    if snap.get("message"):
        lines.append(f"ⓘ {snap['message']}")
    if notice:
        lines.append(f"» {notice}")
    return "  \n".join(lines)


def series_key(history: dict, keys: list) -> tuple:
    out = []
    for spec in keys:
        s = history.get(spec[0])
        out.append((spec[0], len(s["step"]), s["step"][-1]) if s and s["step"] else (spec[0], 0, None))
    return tuple(out)


def chart(run: Run, name: str, smoothing: float, last: int | None = None) -> Any:
    hist = run.snap.get("history", {})
    spec = CHARTS[name]
    key = (name, series_key(hist, spec), round(smoothing, 3), last)
    y2 = {"loss": "TD loss", "reward": "return"}.get(name, "")
    empty = "waiting for the first steps..."
    if name == "fid" and not (run.snap.get("config") or {}).get("fid_every", 1):
        empty = "FID is off in this run (FID every N steps = 0)"
    elif name == "eps" and not (run.snap.get("config") or {}).get("agent_every", 1):
        empty = "the agent is off in this run (agent step every N = 0)"
    return run.memo(key, lambda: charts.to_plot(charts.line_figure(
        hist, spec, smoothing if name != "fid" else 0, ytitle=_ytitle(name), last=last, y2title=y2,
        empty_text=empty)))


def _ytitle(name: str) -> str:
    return {"loss": "loss", "reward": "D score (logit)", "eps": "ε", "fid": "FID"}[name]


def latest(hist: dict, key: str) -> tuple[int, float] | None:
    s = hist.get(key)
    return (s["step"][-1], s["value"][-1]) if s and s["step"] and s["value"][-1] is not None else None


def chart_text(hist: dict, spec: list) -> str:
    """The text alternative of a line chart: the newest value of each series."""
    parts = []
    for key, name, *_ in spec:
        got = latest(hist, key)
        if got is not None:
            parts.append(f"{name.split(' (')[0]} **{got[1]:.3g}** (step {got[0]:,})")
    return "latest: " + " · ".join(parts) if parts else "no data yet"


def q_text(labels: list[str], hist: dict) -> tuple[str, str]:
    q = hist.get("q_probe")
    if not q or not q["value"]:
        return "no Q-values yet (the agent has not started)", "no Q-values yet"
    now = np.asarray(q["value"][-1])
    best = int(np.argmax(now))
    order = np.argsort(-now)
    top = ", ".join(f"{labels[i]} {now[i]:.3f}" for i in order[:3])
    spread = float(np.ptp(np.asarray(q["value"][-min(len(q["value"]), 20):]), axis=1).mean())
    return (f"greedy: **{labels[best]}** (Q {now[best]:.3f}); highest three: {top}",
            f"{len(q['value'])} snapshots; spread between the best and worst action over the last 20: "
            f"**{spread:.3f}** (an untrained network spreads too: watch whether the same rows stay on top)")


def diagram_html(snap: dict) -> str:
    """The model diagram with the run's newest values."""
    return svg(latest_values(snap.get("history", {}), snap.get("action_labels", []), snap.get("last_stats")))


def readouts_html(snap: dict) -> str:
    """Big numbers of the newest values (the charts' latest points), for a projector."""
    hist = snap.get("history", {})
    now = snap.get("step", 0)
    stale_after = 20 * (snap.get("config") or {}).get("log_every", 10)
    cells = []
    for key, label in READOUTS:
        got = latest(hist, key)
        val = "–" if got is None else f"{got[1]:.2f}" if key != "fid" else f"{got[1]:.1f}"
        if got is not None and key != "fid" and now - got[0] > stale_after:  # e.g. G loss while G is frozen
            label += f" (at step {got[0]:,})"
        cells.append(f'<div class="readout" id="readout-{key}"><div class="readout-value">{val}</div>'
                     f'<div class="readout-label">{label}</div></div>')
    return '<div class="readouts" role="status" aria-live="off">' + "".join(cells) + "</div>"


def q_charts(run: Run, smoothing: float = 0.0) -> tuple[Any, Any]:
    hist = run.snap.get("history", {})
    labels = run.snap.get("action_labels", [])
    q = hist.get("q_probe")
    key = ("q", series_key(hist, [("q_probe",)]), round(smoothing, 3))

    def make() -> tuple:
        last = q["value"][-1] if q and q["value"] else None
        return (charts.to_plot(charts.q_bar_figure(labels, last)),
                charts.to_plot(charts.q_heatmap_figure(q, labels, smoothing)))
    return run.memo(key, make)


def grid_at(run: Run, step: int | None = None) -> tuple[int, str]:
    """(step, PNG path of raw | refined) for the recorded grid nearest at or before `step` (None = newest).

    A run loaded from a checkpoint has no recorded grids until it trains, so it gets one drawn from fixed noise."""
    grids = run.snap.get("grids") or []
    if not grids:
        s = run.snap.get("step", 0)
        return s, _png(run, f"drawn{s}", lambda: _drawn_grid(run))
    if step is None:
        g = grids[-1]
    else:
        before = [g for g in grids if g[0] <= step]
        g = before[-1] if before else grids[0]
    return g[0], _png(run, f"step{g[0]}", lambda: images.upscale(_grid_image(g[1], g[2]), GRID_SCALE))


def _grid_image(raw: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """raw | refined; raw alone (twice as large) when the agent had not acted yet (the trainer then records the same
    array twice), as in a GAN-only lesson."""
    return images.grid_image(raw) if refined is raw else images.grid_pair(raw, refined)


def _png(run: Run, tag: str, make: Any) -> str:
    """The PNG for (run, tag), written on first use (and again if the temp-file sweep removed it)."""
    from PIL import Image

    path = GRID_DIR / f"run{run.uid}-{tag}-{os.getpid()}.png"
    if path.is_file():
        return str(path)
    GRID_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in GRID_DIR.glob("*.png"):  # bounded disk
        try:
            if now - old.stat().st_mtime > FILE_TTL:
                old.unlink()
        except OSError:
            pass
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    Image.fromarray(make(), mode="L").save(tmp, format="PNG", compress_level=1)  # 5x faster, ~1.3x bigger
    os.replace(tmp, path)  # atomic: a concurrent viewer never reads a half-written file
    return str(path)


def _drawn_grid(run: Run) -> np.ndarray:
    t = run.runner
    z = t.fixed_z  # the run's own fixed noise (restored from its checkpoint): the grids recorded later use it too
    raw = t.generate(z).numpy()
    refined = t.generate(z, refine=True).numpy() if run.snap.get("agent_steps") else raw
    return images.upscale(_grid_image(raw, refined), GRID_SCALE)


def lock_key_of(locked: bool, cfg: dict) -> str:
    inactive = knobs.inactive(Config.from_dict(cfg)) if cfg else []
    return ("locked" if locked else "free") + ("|" + "; ".join(inactive) if inactive else "")


# ---------------------------------------------------------------------------------------------------- the tab
def build(ctx: AppContext) -> TrainTab:
    reg = ctx.registry
    base_cfg = ctx.base_config()
    start_preset = ctx.preset if ctx.preset in PRESETS else "cpu"

    with gr.Row(equal_height=True, elem_id="train-buttons"):
        train_btn = gr.Button("▶ Train", variant="primary", elem_id="train-btn", scale=1)
        pause_btn = gr.Button("❚❚ Pause", elem_id="pause-btn", scale=1)
        step_btn = gr.Button("Step ▸|", elem_id="step-btn", scale=1)
        reset_btn = gr.Button("↺ Reset…", variant="stop", elem_id="reset-btn", scale=1)
        watch_btn = gr.Button("Watch others", elem_id="watch-btn", scale=1)
        n_steps = gr.Number(10, label="steps per Step click", precision=0, minimum=1, maximum=10_000, scale=1,
                            elem_id="step-n")
    with gr.Row(elem_id="part-buttons"):
        gr.Markdown("**One piece at a time:**", elem_classes=["chart-title"])
        step_d = gr.Button("Step D", size="sm", elem_id="step-d-btn", scale=0, min_width=110)
        step_g = gr.Button("Step G", size="sm", elem_id="step-g-btn", scale=0, min_width=110)
        step_a = gr.Button("Step agent", size="sm", elem_id="step-agent-btn", scale=0, min_width=130)
        gr.Markdown(PARTS_HELP, elem_classes=["chart-text"])
        speed = gr.Radio(list(SPEEDS), value="normal", label="speed", elem_id="speed", scale=0, min_width=300)
    with gr.Row(visible=False, elem_id="reset-confirm") as confirm_row:
        confirm_md = gr.Markdown("", elem_id="reset-confirm-text")
        confirm_btn = gr.Button("Yes, reset", variant="stop", elem_id="reset-yes", scale=0, min_width=140)
        cancel_btn = gr.Button("Cancel", elem_id="reset-cancel", scale=0, min_width=120)
    status = gr.Markdown("loading…", elem_id="status")
    readouts = gr.HTML(readouts_html({}), elem_id="readouts")
    cfg_state = gr.State(base_cfg.to_dict())
    recipe = gr.State(knobs.recipe_for(knobs.preset_config(start_preset), base_cfg, start_preset))
    timer = gr.Timer(POLL_SECONDS)

    with gr.Row():
        with gr.Column(scale=1, min_width=300, elem_id="knob-col"):
            preset = gr.Dropdown([(PRESET_INFO.get(p, p), p) for p in PRESETS], value=start_preset,
                                 label="preset: what Reset starts from (fills the knobs below)", elem_id="preset",
                                 elem_classes=["knob-frozen"])
            lock_note = gr.Markdown(knobs.LOCK_NOTE, visible=False, elem_id="lock-note")
            inactive_note = gr.Markdown("", visible=False, elem_id="inactive-note")
            widgets: dict[str, Any] = {}
            for group in knobs.GROUPS:
                with gr.Accordion(group, open=group in ("Model & data", "GAN", "Agent")):
                    for k in knobs.KNOBS:
                        if k.group == group:
                            widgets[k.key] = knobs.make_widget(k, knobs.value_of(k.key, base_cfg.to_dict()))
        with gr.Column(scale=3, elem_id="chart-col"):
            with gr.Row(elem_id="chart-controls"):
                smoothing = gr.Slider(0, 0.99, value=0.6, step=0.01, label="smoothing (TensorBoard-style EMA)",
                                      elem_id="smoothing", scale=3)
                win = gr.Radio(list(WINDOWS), value="whole run", label="x-axis", elem_id="chart-window", scale=2)
            with gr.Row(elem_id="row-key"):
                with gr.Column(min_width=280):
                    gr.Markdown("**Samples from fixed noise**: raw (left) | agent-refined (right)",
                                elem_classes=["chart-title"])
                    grid = gr.Image(show_label=False, elem_id="sample-grid", format="png", image_mode="L",
                                    interactive=False, buttons=["download", "fullscreen"], height=300)
                    with gr.Row():
                        grid_step = gr.Slider(0, 1, value=0, step=1, label="timeline: training step of the grid",
                                              elem_id="grid-step", scale=4)
                        follow = gr.Checkbox(True, label="follow latest", elem_id="grid-follow", scale=1)
                    grid_text = gr.Markdown("", elem_id="grid-text")
                    _explain("grid")
                reward_plot, reward_text = _chart_box("reward-plot", "**Discriminator scores**: D(x), D(G(z)), "
                                                      "D(G(z_T)) and the episode return", "reward")
                loss_plot, loss_text = _chart_box("loss-plot", "**Losses**: D, G and the agent's TD error", "loss")
            with gr.Accordion("How one step works: the model diagram and a narrated slow-motion step", open=True,
                              elem_id="diagram-box"):
                diagram = gr.HTML(diagram_html({}), elem_id="diagram")
                with gr.Row():
                    slowmo_btn = gr.Button("Slow-motion step (narrated)", elem_id="slowmo-btn", variant="primary",
                                           scale=0, min_width=220)
                    narr_pause = gr.Button("Pause / resume narration", elem_id="narr-pause", size="sm", scale=0,
                                           min_width=190)
                    narr_next = gr.Button("Next sub-step", elem_id="narr-next", size="sm", scale=0, min_width=140)
                    reduced = gr.Checkbox(False, label="no animation: show every sub-step at once", scale=1,
                                          elem_id="reduced-motion")
                # the narrated step's own captions (only the slow-motion step writes them; see diagram.NARRATE_JS)
                narr_script = gr.Textbox("", elem_id="narration-script", visible="hidden", interactive=False,
                                         container=False, show_label=False)
            with gr.Row():
                q_plot, q_plot_text = _chart_box("q-plot", "**Q-values now** (mean over the probe states)", "q")
                q_heat, q_heat_text = _chart_box("q-heatmap", "**Q per action over training**", "qheat")
            with gr.Row():
                fid_plot, fid_text = _chart_box("fid-plot", "**FID over time** (lower is better)", "fid")
                eps_plot, eps_text = _chart_box("eps-plot", "**ε-greedy exploration**", "eps")
            with gr.Row():
                gif_btn = gr.Button("Make a GIF of the whole timeline", elem_id="gif-btn", scale=1)
                gif = gr.Image(label="timeline GIF (plays here; right-click to save)", elem_id="gif-file",
                               type="filepath", interactive=False, height=240, scale=2, buttons=["download"])

    knob_list = [widgets[k] for k in knobs.KEYS]
    frozen_widgets = [widgets[k] for k in knobs.FROZEN] + [preset]

    # ------------------------------------------------------------------------------------------------ poll
    # The tick returns only plain strings: the status line, the readouts and three hidden "keys" (what data each
    # group of outputs would show). The browser fires a key's .change only when the key differs, and that event
    # re-renders its group. Why not gr.skip() per output: in Gradio 6.31 every update dict, skip included, rebuilds a
    # component and its config server-side (~1-2 ms of GIL each); ~20 of them per tick per viewer starved training.
    def poll(request: gr.Request) -> tuple:
        sid = request.session_hash or "anon"
        sess = reg.session(sid)
        if sess.follow and sess.watching is None and sess.run is None:
            reg.watch(sid)  # a students' link: follow the run that trains here once one does
        run = reg.view(sid)
        snap = run.snap or run.refresh()
        hist = snap.get("history", {})
        key = f"{run.uid}:{snap.get('step', 0)}:{len(hist.get('d_loss', {}).get('step', []))}:" \
              f"{hash(series_key(hist, LOSS + REWARD + EPSILON + FID + [('q_probe',)]))}"
        now = time.monotonic()
        if key != sess.charts_key and (snap.get("status") != "running" or now - sess.charts_at >= sess.chart_seconds
                                       or not sess.charts_key.startswith(f"{run.uid}:")):
            sess.charts_key, sess.charts_at = key, now
        grids = snap.get("grids") or []
        grid_key = f"{run.uid}:{grids[-1][0] if grids else -1}:{snap.get('step', 0) if not grids else ''}"
        locked = sess.run is run and snap.get("status") == "running"
        return (status_text(run, snap, sess.run is run, sess.notice), sess.charts_key, grid_key,
                lock_key_of(locked, snap.get("config") or {}), readouts_html(snap))

    def render_charts(smooth: float, window: str, request: gr.Request) -> tuple:
        """The six charts as values (unchanged ones are the cached objects: the browser doesn't redraw identical
        JSON), then their text alternatives. A plain value costs Gradio far less than a skip (see poll)."""
        run = reg.view(request.session_hash or "anon")
        smooth = float(smooth or 0.0)
        last = WINDOWS.get(window)
        qbar, qheat = q_charts(run, smooth)
        hist = run.snap.get("history", {})
        qt, qh = q_text(run.snap.get("action_labels", []), hist)
        return (chart(run, "loss", smooth, last), chart(run, "reward", smooth, last), qbar, qheat,
                chart(run, "eps", smooth, last), chart(run, "fid", smooth, last),
                chart_text(hist, LOSS), chart_text(hist, REWARD), qt, qh, chart_text(hist, EPSILON),
                chart_text(hist, FID), diagram_html(run.snap))

    def render_grid(follow_latest: bool, request: gr.Request) -> tuple:
        run = reg.view(request.session_hash or "anon")
        grids = (run.snap or run.refresh()).get("grids") or []
        newest = grids[-1][0] if grids else run.snap.get("step", 0)  # a loaded run has no recorded grids yet
        if not follow_latest:
            return gr.skip(), gr.update(maximum=max(1, newest)), gr.skip()
        step, img = grid_at(run)
        return (img, gr.update(maximum=max(1, newest), value=step),
                _grid_caption(step, newest, bool(run.snap.get("agent_steps"))))

    def render_locks(key: str) -> tuple:
        locked = key.split("|")[0] == "locked"
        inactive = key.split("|", 1)[1] if "|" in key else ""
        note = gr.update(visible=bool(inactive), value=f"**No effect in this run:** {inactive}.")
        return (*[gr.update(interactive=not locked) for _ in frozen_widgets], gr.update(visible=locked), note)

    keys = dict(visible="hidden", interactive=False, container=False, show_label=False)
    charts_key = gr.Textbox("", elem_id="charts-key", **keys)
    grid_key = gr.Textbox("", elem_id="grid-key", **keys)
    lock_key = gr.Textbox("", elem_id="lock-key", **keys)
    fast = dict(queue=False, show_progress="hidden")  # plain HTTP: no queue bookkeeping, SSE or progress events
    chart_outputs = [loss_plot, reward_plot, q_plot, q_heat, eps_plot, fid_plot,
                     loss_text, reward_text, q_plot_text, q_heat_text, eps_text, fid_text, diagram]
    timer.tick(guard(5)(poll), None, [status, charts_key, grid_key, lock_key, readouts], api_name="poll", **fast)
    charts_key.change(guard(13)(render_charts), [smoothing, win], chart_outputs, api_name="charts", **fast)
    smoothing.release(guard(13)(render_charts), [smoothing, win], chart_outputs, api_name="smooth", **fast)
    win.input(guard(13)(render_charts), [smoothing, win], chart_outputs, api_visibility="undocumented", **fast)
    grid_outputs = [grid, grid_step, grid_text]
    grid_key.change(guard(3)(render_grid), [follow], grid_outputs, api_name="grid", **fast)
    follow.input(guard(3)(render_grid), [follow], grid_outputs, api_visibility="undocumented", **fast)
    lock_key.change(guard(len(frozen_widgets) + 2)(render_locks), [lock_key],
                    [*frozen_widgets, lock_note, inactive_note], api_name="locks", **fast)

    # ------------------------------------------------------------------------------------------------ fill
    fill_outputs = [cfg_state, recipe, *knob_list, preset]

    def fill(cfg: Config, rec: dict) -> tuple:
        """The knobs, the hidden base config and the recipe for a config the session now looks at."""
        return (cfg.to_dict(), rec, *knobs.values_of(cfg), rec.get("preset") or gr.skip())

    # ------------------------------------------------------------------------------------------------ commands
    def cfg_from(base: dict, vals: tuple) -> Config:
        return knobs.build_config(base, dict(zip(knobs.KEYS, vals)))

    def ensure_run(sid: str, cfg: Config) -> tuple[Run, list[str]]:
        """The session's own run; created on first use from the base checkpoint (if the knobs match it) or fresh."""
        notes: list[str] = []
        sess = reg.session(sid)
        if sess.run is None:
            base = reg.base
            if base.source is not None and config_core(cfg) == config_core(base.runner.cfg):
                run = reg.own(sid, ctx.clone_base)
                notes.append(f"started your own copy: {run.label}")
            else:
                run = reg.own(sid, lambda: ctx.fresh(cfg))
                notes.append("started a fresh model with your settings")
        run = reg.session(sid).run
        live = {k: getattr(cfg, k) for k in LIVE_KEYS if getattr(cfg, k) != getattr(run.runner.cfg, k)}
        if live:
            run.runner.set(**live)
            run.dirty = True
        changed = knobs.diff_frozen(run.runner.cfg.to_dict(), cfg)
        if changed:
            notes.append(f"{', '.join(changed)} changed: press Reset to start a run with the new value(s); "
                         f"this run keeps its own")
        return run, notes

    def finish(sid: str, notes: list[str]) -> str:
        sess = reg.session(sid)
        sess.notice = "; ".join(notes) if notes else None
        run = reg.view(sid)
        run.dirty = True
        snap = run.refresh()
        return status_text(run, snap, sess.run is run, sess.notice)

    def fail(sid: str, exc: BaseException) -> str:
        """Warn with the readable message and put it in the status line; nothing else changes."""
        msg = readable(exc)
        warn(msg)
        sess = reg.session(sid)
        sess.notice = msg
        run = reg.view(sid)
        return status_text(run, run.snap or run.refresh(), sess.run is run, msg)

    def command(fn: Any) -> Any:
        """A button handler: returns the status text; errors become a warning + the status line."""
        def handler(request: gr.Request, *args: Any) -> str:  # Gradio injects a Request only positionally
            sid = request.session_hash or "anon"
            try:
                return finish(sid, fn(sid, *args))
            except Exception as exc:  # noqa: BLE001 - everything becomes a readable message
                return fail(sid, exc)
        handler.__name__ = fn.__name__
        return handler

    def start(sid: str, cfg: Config, steps: int | None, part: str = "joint") -> list[str]:
        """Train / Step on the session's own run (made on first use; given back if every slot is busy)."""
        reg.unwatch(sid)
        reg.session(sid).follow = False
        had = reg.session(sid).run is not None
        if not had:
            reg.check_slot()  # before building a run that could not start anyway
        cfg = cfg.replace(step_delay=reg.session(sid).step_delay)  # the speed control's, not the knobs' base
        run, notes = ensure_run(sid, cfg)
        if run.running:
            if steps is not None:
                raise UserError("training is running; press Pause first, then Step")
            return notes + ["already training"]
        try:
            reg.train(run, steps, part)
        except Busy:
            if not had:
                reg.release(sid, run)  # keep looking at the shared model (and free to Watch) instead
            raise
        if part != "joint":
            return notes + [PART_DONE[part]]
        return notes + ([f"stepping {steps} step(s)"] if steps else [])

    def do_train(sid: str, base: dict, *vals: Any) -> list[str]:
        return start(sid, cfg_from(base, vals), None)

    def do_step(sid: str, n: Any, base: dict, *vals: Any) -> list[str]:
        if n is None or not 1 <= int(n) <= 10_000:
            raise UserError("steps per Step click must be a whole number from 1 to 10000")
        return start(sid, cfg_from(base, vals), int(n))

    def do_part(part: str) -> Any:
        def step_part(sid: str, base: dict, *vals: Any) -> list[str]:
            return start(sid, cfg_from(base, vals), 1, part)
        step_part.__name__ = f"step_{part}"
        return step_part

    def do_pause(sid: str) -> list[str]:
        sess = reg.session(sid)
        if sess.watching is not None:
            raise UserError("you are watching another visitor's run (read-only) and cannot pause it; press Train to "
                            "go back to your own")
        if sess.run is None:
            raise UserError("nothing of yours is training (you are looking at the shared model); press Train")
        sess.run.runner.pause()
        sess.run.runner.wait(timeout=5)  # a step in flight finishes first; then the status is final
        return ["paused"]

    def do_watch(sid: str) -> list[str]:
        if reg.watch(sid) is None:
            return ["nobody else is training right now"]
        return ["watching another visitor's run (read-only); press Train to go back to your own"]

    cmd_out = [status]
    kw = {"concurrency_limit": None, "show_progress": "hidden"}
    train_btn.click(command(do_train), [cfg_state, *knob_list], cmd_out, api_name="train", **kw)
    step_btn.click(command(do_step), [n_steps, cfg_state, *knob_list], cmd_out, api_name="step", **kw)
    pause_btn.click(command(do_pause), None, cmd_out, api_name="pause", **kw)
    for btn, part in ((step_d, "d"), (step_g, "g"), (step_a, "agent")):
        btn.click(command(do_part(part)), [cfg_state, *knob_list], cmd_out, api_name=f"step_{part}", **kw)
    watch_btn.click(command(do_watch), None, cmd_out, api_name="watch", **kw)

    # ------------------------------------------------------------------------------------------------ slow motion
    def slow_motion(request: gr.Request, base: dict, *vals: Any) -> tuple:
        """One joint step, then the diagram with that step's values (the page's JS then narrates it)."""
        sid = request.session_hash or "anon"
        try:
            notes = start(sid, cfg_from(base, vals), 1)
            run = reg.session(sid).run
            run.runner.wait(timeout=30)
            snap = run.refresh()
            vals = latest_values(snap.get("history", {}), snap.get("action_labels", []), snap.get("last_stats"))
            return (finish(sid, [*notes[:-1], "slow motion: one joint step, narrated below"]), svg(vals),
                    narration_json(vals))
        except Exception as exc:  # noqa: BLE001 - a readable message, nothing else changes
            return fail(sid, exc), gr.skip(), ""

    slowmo_btn.click(slow_motion, [cfg_state, *knob_list], [status, diagram, narr_script], api_name="slow_motion",
                     **kw).then(None, [reduced, narr_script], None, js=NARRATE_JS)
    narr_pause.click(None, None, None, js="() => { if (window.__narr) window.__narr.paused = !window.__narr.paused; }")
    narr_next.click(None, None, None, js="() => { if (window.__narr) { window.__narr.paused = true; "
                                         "window.__narrShow && window.__narrShow(); } }")

    def set_speed(name: str, request: gr.Request) -> str:
        if name not in SPEEDS:
            raise UserError(f"unknown speed {name!r}; choose slow, normal or fast")
        sid = request.session_hash or "anon"
        sess = reg.session(sid)
        sess.step_delay, sess.chart_seconds, says = SPEEDS[name]
        delay = sess.step_delay
        if sess.run is not None and sess.run.runner.cfg.step_delay != delay:
            sess.run.runner.set(step_delay=delay)
        return finish(sid, [says])

    speed.input(guard(1)(set_speed), [speed], [status], api_name="speed", **kw)

    # ------------------------------------------------------------------------------------------------ reset
    def reset_plan(rec: dict, vals: tuple) -> str:
        """What Reset will build, in words (the confirmation shows it before anything is thrown away)."""
        changes = knobs.edited(rec, vals)
        start_from = (f"lesson {rec['lesson'].split('.')[0]}'s start" if rec.get("lesson")
                      else f"preset **{rec.get('preset') or 'custom'}**")
        extra = (" with your changes: " + ", ".join(f"{k}={v}" for k, v in changes.items())) if changes else ""
        return f"Reset throws this run away and starts again from {start_from}{extra}. Sure?"

    def ask_reset(rec: dict, *vals: Any) -> tuple:
        return gr.update(visible=True), reset_plan(rec, vals)

    reset_btn.click(ask_reset, [recipe, *knob_list], [confirm_row, confirm_md], api_visibility="undocumented",
                    **fast)
    cancel_btn.click(lambda: gr.update(visible=False), None, [confirm_row], api_visibility="undocumented", **fast)

    def do_reset(request: gr.Request, rec: dict, *vals: Any) -> tuple:
        """A fresh run from the recipe (a lesson's start, or a preset) plus the knobs the user changed; never the
        loaded model's hidden settings."""
        sid = request.session_hash or "anon"
        hide = gr.update(visible=False)
        try:
            changes = knobs.edited(rec, vals)
            if rec.get("lesson"):
                from .lessons import LESSONS
                lesson = LESSONS[rec["lesson"]]
                settings = knobs.build_config(rec["config"], changes).to_dict()
                overrides = {k: v for k, v in settings.items() if v != rec["config"].get(k)}
                reg.unwatch(sid)
                run = reg.own(sid, lambda: ctx.lesson_run(lesson, overrides), replace=True)
                what = f"reset: lesson {rec['lesson'].split('.')[0]} starts again"
            else:
                cfg = knobs.build_config(rec["config"], changes)
                reg.unwatch(sid)
                run = reg.own(sid, lambda: ctx.fresh(cfg), replace=True)
                what = f"reset: a fresh, untrained model from preset {rec.get('preset') or 'custom'}"
            if changes:
                what += " with " + ", ".join(f"{k}={v}" for k, v in changes.items())
            cfg = run.runner.cfg
            new_rec = dict(rec, origin=dict(zip(knobs.KEYS, knobs.values_of(Config.from_dict(rec["config"])))))
            return (finish(sid, [what + " (press Train)"]), hide, *fill(cfg, new_rec))
        except Exception as exc:  # noqa: BLE001 - a readable message; the old run and the knobs stay
            return (fail(sid, exc), hide, *[gr.skip() for _ in fill_outputs])

    confirm_btn.click(do_reset, [recipe, *knob_list], [status, confirm_row, *fill_outputs], api_name="reset", **kw)

    # ------------------------------------------------------------------------------------------------ live knobs
    live_keys = [k for k in knobs.KEYS if knobs.BY_KEY[k].live]
    live_widgets = [widgets[k] for k in live_keys]

    @guard(1)
    def set_live(request: gr.Request, *vals: Any) -> Any:
        sess = reg.session(request.session_hash or "anon")
        if sess.run is None:
            return gr.skip()  # no run of this session yet: the values are used when it starts
        cur = sess.run.runner.cfg
        values = knobs.live_values(dict(zip(live_keys, vals)), cur.to_dict())
        changed = {k: v for k, v in values.items() if getattr(cur, k) != v}
        if changed:
            sess.run.runner.set(**changed)  # validated by the engine; ConfigError -> warning, run untouched
            sess.run.dirty = True
            sess.notice = "live: " + ", ".join(f"{k}={v}" for k, v in changed.items())
        return gr.skip()

    # .input, not .change: only a person's edit goes to the run; a lesson, preset or load filling the knobs doesn't
    for key, w in zip(live_keys, live_widgets):
        w.input(set_live, live_widgets, [status], api_name=f"set_{key}", concurrency_limit=None,
                show_progress="hidden", trigger_mode="always_last", api_visibility="undocumented")

    # ------------------------------------------------------------------------------------------------ preset
    @guard(len(fill_outputs))
    def load_preset(name: str, request: gr.Request) -> tuple:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}")
        cfg = knobs.preset_config(name)
        reg.session(request.session_hash or "anon").notice = (
            f"preset {name}: the knobs show its settings; press Reset to start a fresh model with them")
        return fill(cfg, knobs.recipe_for(cfg, cfg, name))

    preset.input(load_preset, [preset], fill_outputs, api_name="load_preset")

    # ------------------------------------------------------------------------------------------------ timeline
    @guard(3)
    def scrub(step: float, request: gr.Request) -> tuple:
        run = reg.view(request.session_hash or "anon")
        got, path = grid_at(run, int(step or 0))
        grids = run.snap.get("grids") or []
        return path, False, _grid_caption(got, grids[-1][0] if grids else got)

    # .input: a drag and a step typed into the number box both scrub (and stop following the newest grid)
    grid_step.input(scrub, [grid_step], [grid, follow, grid_text], api_name="scrub", concurrency_limit=None,
                    trigger_mode="always_last", show_progress="hidden")

    @guard(1)
    def make_gif(request: gr.Request) -> str:
        run = reg.view(request.session_hash or "anon")
        grids = (run.snap or run.refresh()).get("grids") or []
        if not grids:
            raise UserError("no timeline yet: train a few steps first (grids are recorded every grid_every steps)")
        GIF_DIR.mkdir(parents=True, exist_ok=True)
        for old in GIF_DIR.glob("*.gif"):  # bounded disk: Gradio serves its own copy, ours is only needed briefly
            if time.time() - old.stat().st_mtime > FILE_TTL:
                old.unlink(missing_ok=True)
        out = GIF_DIR / f"timeline-run{run.uid}-step{run.snap.get('step', 0)}.gif"
        images.timeline_gif(grids, out)
        return str(out)

    gif_btn.click(make_gif, None, [gif], api_name="gif")

    def status_of(sid: str) -> str:
        sess = reg.session(sid)
        run = reg.view(sid)
        return status_text(run, run.snap or run.refresh(), sess.run is run, sess.notice)

    return TrainTab(knobs=widgets, preset=preset, base_cfg=cfg_state, recipe=recipe, status=status, timer=timer,
                    fill=fill, fill_outputs=fill_outputs, status_of=status_of)


def _grid_caption(step: int, newest: int, agent: bool = True) -> str:
    """Which step the grid shows (the slider can sit between two recorded grids)."""
    what = "" if agent else "; raw samples only: the agent has not acted yet"
    if step >= newest:
        return f"showing step {step:,} (the newest grid){what}"
    return (f"showing the grid recorded at step {step:,} (newest: {newest:,}); tick *follow latest* to catch "
            f"up{what}")


def _chart_box(elem_id: str, title: str, explain: str) -> tuple[Any, Any]:
    """A chart with its title above it (a Gradio label floats over the plot's top edge), its text readout and its
    explainer."""
    with gr.Column(min_width=280):
        gr.Markdown(title, elem_classes=["chart-title"])
        plot = gr.Plot(show_label=False, elem_id=elem_id)
        text = gr.Markdown("", elem_id=f"{elem_id}-text", elem_classes=["chart-text"])
        _explain(explain)
    return plot, text


def _explain(name: str) -> None:
    with gr.Accordion("explain: what to look for", open=False, elem_classes=["explain"]):
        gr.Markdown(EXPLAIN[name])
