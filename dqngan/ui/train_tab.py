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
import torch

from ..config import LIVE_KEYS, PRESETS, Config
from . import charts, images, knobs
from .context import AppContext
from .feedback import UserError, guard, warn
from .lessons import EXPLAIN
from .session import Busy, Run, config_core

POLL_SECONDS = 1.0
GRID_SCALE = 2  # the 8x8 grids are sent at 2x, nearest-neighbour, so they stay crisp when shown large
LOSS = [("d_loss", "D loss"), ("g_loss", "G loss"), ("td_loss", "TD loss (agent, right axis)", "y2")]
REWARD = [("d_real", "D(x) real"), ("d_fake", "D(G(z))"), ("d_refined", "D(G(z_T)) agent-refined"),
          ("episode_return", "episode return (right axis)", "y2")]
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
    base_cfg: Any
    status: Any
    timer: Any


# ---------------------------------------------------------------------------------------------------- pure views
def fmt_duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s")


def status_text(run: Run, snap: dict, own: bool, notice: str | None = None) -> str:
    st = snap.get("status", "idle")
    icon = {"running": "🟢", "paused": "⏸️", "idle": "⚪", "stopped": "⏹️", "error": "🔴"}.get(st, "")
    eps = (snap.get("history", {}).get("epsilon") or {}).get("value") or [None]
    parts = [f"{icon} **{st}**", f"step {snap.get('step', 0):,}", f"{snap.get('steps_per_s', 0.0):.1f} steps/s",
             f"agent steps {snap.get('agent_steps', 0):,}"]
    if eps[-1] is not None:
        parts.append(f"ε {eps[-1]:.2f}")
    parts += [f"device {snap.get('device', '?')}", f"trained {fmt_duration(snap.get('elapsed', 0.0))}"]
    whose = "your run" if own else ("watching another visitor's run (read-only)" if run.owner else "shared model")
    lines = [" · ".join(parts), f"Model: {run.label} — {whose}"]
    if snap.get("error"):
        lines.append(f"⚠️ **Training stopped with an error:** {snap['error']}")
    if snap.get("message"):
        lines.append(f"ℹ️ {snap['message']}")
    if notice:
        lines.append(f"💬 {notice}")
    return "  \n".join(lines)


def series_key(history: dict, keys: list) -> tuple:
    out = []
    for spec in keys:
        s = history.get(spec[0])
        out.append((spec[0], len(s["step"]), s["step"][-1]) if s and s["step"] else (spec[0], 0, None))
    return tuple(out)


def chart(run: Run, name: str, smoothing: float) -> Any:
    hist = run.snap.get("history", {})
    spec = CHARTS[name]
    key = (name, series_key(hist, spec), round(smoothing, 3))
    return run.memo(key, lambda: charts.to_plot(charts.line_figure(hist, spec, smoothing if name != "fid" else 0,
                                                                   ytitle=_ytitle(name))))


def _ytitle(name: str) -> str:
    return {"loss": "loss", "reward": "D score (logit) / return", "eps": "ε", "fid": "FID"}[name]


def q_charts(run: Run) -> tuple[Any, Any]:
    hist = run.snap.get("history", {})
    labels = run.snap.get("action_labels", [])
    q = hist.get("q_probe")
    key = ("q", series_key(hist, [("q_probe",)]))

    def make() -> tuple:
        last = q["value"][-1] if q and q["value"] else None
        return (charts.to_plot(charts.q_bar_figure(labels, last)),
                charts.to_plot(charts.q_heatmap_figure(q, labels)))
    return run.memo(key, make)


_fixed_z: dict[int, torch.Tensor] = {}


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
    return g[0], _png(run, f"step{g[0]}", lambda: images.upscale(images.grid_pair(g[1], g[2]), GRID_SCALE))


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
    t = run.trainer
    z_dim = t.cfg.z_dim
    if z_dim not in _fixed_z:
        _fixed_z[z_dim] = torch.randn(64, z_dim, generator=torch.Generator().manual_seed(0))
    z = _fixed_z[z_dim]
    raw = t.generate(z).numpy()
    refined = t.generate(z, refine=True).numpy() if run.snap.get("agent_steps") else raw
    return images.upscale(images.grid_pair(raw, refined), GRID_SCALE)


# ---------------------------------------------------------------------------------------------------- the tab
def build(ctx: AppContext) -> TrainTab:
    reg = ctx.registry
    base_cfg = ctx.base_config()
    start_preset = ctx.preset if ctx.checkpoint is None else None

    with gr.Row(equal_height=True):
        train_btn = gr.Button("▶ Train", variant="primary", elem_id="train-btn", scale=1)
        pause_btn = gr.Button("⏸ Pause", elem_id="pause-btn", scale=1)
        step_btn = gr.Button("⏭ Step", elem_id="step-btn", scale=1)
        reset_btn = gr.Button("↺ Reset", variant="stop", elem_id="reset-btn", scale=1)
        watch_btn = gr.Button("👀 Watch", elem_id="watch-btn", scale=1)
        n_steps = gr.Number(10, label="steps per Step click", precision=0, minimum=1, maximum=10_000, scale=1,
                            elem_id="step-n")
    status = gr.Markdown("loading…", elem_id="status")
    cfg_state = gr.State(base_cfg.to_dict())
    timer = gr.Timer(POLL_SECONDS)

    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            preset = gr.Dropdown(list(PRESETS), value=start_preset, label="preset (fills the knobs below)",
                                 elem_id="preset", elem_classes=["knob-frozen"])
            widgets: dict[str, Any] = {}
            lock_note = gr.Markdown(knobs.LOCK_NOTE, visible=False, elem_id="lock-note")
            for group in knobs.GROUPS:
                with gr.Accordion(group, open=group in ("Model & data", "Agent")):
                    for k in knobs.KNOBS:
                        if k.group == group:
                            widgets[k.key] = knobs.make_widget(k, getattr(base_cfg, k.key))
        with gr.Column(scale=3):
            smoothing = gr.Slider(0, 0.99, value=0.6, step=0.01, label="smoothing (TensorBoard-style EMA)",
                                  elem_id="smoothing")
            with gr.Row():
                with gr.Column():
                    loss_plot = gr.Plot(label="losses: D, G and the agent's TD error", elem_id="loss-plot")
                    _explain("loss")
                with gr.Column():
                    reward_plot = gr.Plot(label="discriminator rewards: D(real), D(G(z)), D(G(z_T)), return",
                                          elem_id="reward-plot")
                    _explain("reward")
            with gr.Row():
                with gr.Column():
                    q_plot = gr.Plot(label="Q-values now (mean over the probe states)", elem_id="q-plot")
                    _explain("q")
                with gr.Column():
                    q_heat = gr.Plot(label="Q per action over training", elem_id="q-heatmap")
                    _explain("qheat")
            with gr.Row():
                with gr.Column():
                    eps_plot = gr.Plot(label="ε-greedy exploration", elem_id="eps-plot")
                    _explain("eps")
                with gr.Column():
                    fid_plot = gr.Plot(label="FID over time (lower is better)", elem_id="fid-plot")
                    _explain("fid")
            grid = gr.Image(label="samples from fixed noise: raw (left) | agent-refined (right)",
                            elem_id="sample-grid", format="png", image_mode="L", interactive=False,
                            buttons=["download", "fullscreen"], height=300)
            with gr.Row():
                grid_step = gr.Slider(0, 1, value=0, step=1, label="timeline: training step of the grid",
                                      elem_id="grid-step", scale=4)
                follow = gr.Checkbox(True, label="follow latest", elem_id="grid-follow", scale=1)
            _explain("grid")
            with gr.Row():
                gif_btn = gr.Button("🎞 Make GIF of the whole timeline", elem_id="gif-btn")
                gif_file = gr.File(label="timeline GIF", elem_id="gif-file", interactive=False)

    knob_list = [widgets[k] for k in knobs.KEYS]
    frozen_widgets = [widgets[k] for k in knobs.FROZEN] + [preset]

    # ------------------------------------------------------------------------------------------------ poll
    # The tick returns only plain strings: the status line and three hidden "keys" (what data each group of outputs
    # would show). The browser fires a key's .change only when the key differs, and that event re-renders its group.
    # Why not gr.skip() per output: in Gradio 6.31 every update dict, skip included, rebuilds a component and its
    # config server-side (~1-2 ms of GIL each); ~20 of them per tick per viewer starved the training thread.
    def poll(request: gr.Request) -> tuple:
        sid = request.session_hash or "anon"
        sess = reg.session(sid)
        run = reg.view(sid)
        snap = run.snap or run.refresh()
        hist = snap.get("history", {})
        charts_key = f"{run.uid}:{snap.get('step', 0)}:{len(hist.get('d_loss', {}).get('step', []))}:" \
                     f"{hash(series_key(hist, LOSS + REWARD + EPSILON + FID + [('q_probe',)]))}"
        grids = snap.get("grids") or []
        grid_key = f"{run.uid}:{grids[-1][0] if grids else -1}:{snap.get('step', 0) if not grids else ''}"
        locked = sess.run is run and snap.get("status") == "running"
        lock_key = "locked" if locked else "free"
        return status_text(run, snap, sess.run is run, sess.notice), charts_key, grid_key, lock_key

    def render_charts(smooth: float, request: gr.Request) -> tuple:
        """All six charts as values (unchanged ones are the cached objects: the browser doesn't redraw identical
        JSON). A plain value costs Gradio far less than a skip (see poll)."""
        run = reg.view(request.session_hash or "anon")
        smooth = float(smooth or 0.0)
        qbar, qheat = q_charts(run)
        return (chart(run, "loss", smooth), chart(run, "reward", smooth), qbar, qheat, chart(run, "eps", smooth),
                chart(run, "fid", smooth))

    def render_grid(follow_latest: bool, request: gr.Request) -> tuple:
        run = reg.view(request.session_hash or "anon")
        grids = (run.snap or run.refresh()).get("grids") or []
        newest = grids[-1][0] if grids else 0
        if not follow_latest:
            return gr.skip(), gr.update(maximum=max(1, newest))
        step, img = grid_at(run)
        return img, gr.update(maximum=max(1, newest), value=step if grids else 0)

    def render_locks(key: str) -> tuple:
        locked = key == "locked"
        return (*[gr.update(interactive=not locked) for _ in frozen_widgets], gr.update(visible=locked))

    keys = dict(visible="hidden", interactive=False, container=False, show_label=False)
    charts_key = gr.Textbox("", elem_id="charts-key", **keys)
    grid_key = gr.Textbox("", elem_id="grid-key", **keys)
    lock_key = gr.Textbox("", elem_id="lock-key", **keys)
    fast = dict(queue=False, show_progress="hidden")  # plain HTTP: no queue bookkeeping, SSE or progress events
    chart_outputs = [loss_plot, reward_plot, q_plot, q_heat, eps_plot, fid_plot]
    timer.tick(guard(4)(poll), None, [status, charts_key, grid_key, lock_key], api_name="poll", **fast)
    charts_key.change(guard(6)(render_charts), [smoothing], chart_outputs, api_name="charts", **fast)
    smoothing.release(guard(6)(render_charts), [smoothing], chart_outputs, api_name="smooth", **fast)
    grid_key.change(guard(2)(render_grid), [follow], [grid, grid_step], api_name="grid", **fast)
    follow.input(guard(2)(render_grid), [follow], [grid, grid_step], api_visibility="undocumented", **fast)
    lock_key.change(guard(len(frozen_widgets) + 1)(render_locks), [lock_key], [*frozen_widgets, lock_note],
                    api_name="locks", **fast)
    # ------------------------------------------------------------------------------------------------ commands
    def cfg_from(base: dict, vals: tuple) -> Config:
        return knobs.build_config(base, dict(zip(knobs.KEYS, vals)))

    def ensure_run(sid: str, cfg: Config) -> tuple[Run, list[str]]:
        """The session's own run; created on first use from the base checkpoint (if the knobs match it) or fresh."""
        notes: list[str] = []
        sess = reg.session(sid)
        if sess.run is None:
            base = reg.base
            if base.source is not None and config_core(cfg) == config_core(base.trainer.cfg):
                run = reg.own(sid, ctx.clone_base)
                notes.append(f"started your own copy: {run.label}")
            else:
                run = reg.own(sid, lambda: ctx.fresh(cfg))
                notes.append("started a fresh model with your settings")
        run = reg.session(sid).run
        live = {k: getattr(cfg, k) for k in LIVE_KEYS if getattr(cfg, k) != getattr(run.trainer.cfg, k)}
        if live:
            run.trainer.set(**live)
            run.dirty = True
        changed = knobs.diff_frozen(run.trainer.cfg.to_dict(), cfg)
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

    def fail(sid: str, msg: str) -> str:
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
                from .feedback import readable
                msg = readable(exc)
                warn(msg)
                return fail(sid, msg)
        handler.__name__ = fn.__name__
        return handler

    def start(sid: str, cfg: Config, steps: int | None) -> list[str]:
        """Train / Step on the session's own run (made on first use; given back if every slot is busy)."""
        reg.unwatch(sid)
        had = reg.session(sid).run is not None
        run, notes = ensure_run(sid, cfg)
        if run.running:
            if steps is not None:
                raise UserError("training is running; press Pause first, then Step")
            return notes + ["already training"]
        try:
            reg.train(run, steps)
        except Busy:
            if not had:
                reg.release(sid, run)  # keep looking at the shared model (and free to Watch) instead
            raise
        return notes + ([f"stepping {steps} step(s)"] if steps else [])

    def do_train(sid: str, base: dict, *vals: Any) -> list[str]:
        return start(sid, cfg_from(base, vals), None)

    def do_step(sid: str, n: Any, base: dict, *vals: Any) -> list[str]:
        if n is None or not 1 <= int(n) <= 10_000:
            raise UserError("steps per Step click must be a whole number from 1 to 10000")
        return start(sid, cfg_from(base, vals), int(n))

    def do_pause(sid: str) -> list[str]:
        sess = reg.session(sid)
        if sess.watching is not None:
            raise UserError("you are watching another visitor's run (read-only) and cannot pause it; press Train to "
                            "go back to your own")
        if sess.run is None:
            raise UserError("nothing of yours is training (you are looking at the shared model); press Train")
        sess.run.trainer.pause()
        sess.run.trainer.wait(timeout=5)  # a step in flight finishes first; then the status is final
        return ["paused"]

    def do_reset(sid: str, base: dict, *vals: Any) -> list[str]:
        cfg = cfg_from(base, vals)
        reg.unwatch(sid)
        reg.own(sid, lambda: ctx.fresh(cfg), replace=True)
        return ["reset: a fresh, untrained model with the current knobs (press Train)"]

    def do_watch(sid: str) -> list[str]:
        if reg.watch(sid) is None:
            return ["nobody else is training right now"]
        return ["watching another visitor's run (read-only); press Train to go back to your own"]

    cmd_out = [status]
    kw = {"concurrency_limit": None, "show_progress": "hidden"}
    train_btn.click(command(do_train), [cfg_state, *knob_list], cmd_out, api_name="train", **kw)
    step_btn.click(command(do_step), [n_steps, cfg_state, *knob_list], cmd_out, api_name="step", **kw)
    pause_btn.click(command(do_pause), None, cmd_out, api_name="pause", **kw)
    reset_btn.click(command(do_reset), [cfg_state, *knob_list], cmd_out, api_name="reset", **kw)
    watch_btn.click(command(do_watch), None, cmd_out, api_name="watch", **kw)

    # ------------------------------------------------------------------------------------------------ live knobs
    live_widgets = [widgets[k] for k in knobs.LIVE]

    @guard(1)
    def set_live(request: gr.Request, *vals: Any) -> Any:
        sess = reg.session(request.session_hash or "anon")
        if sess.run is None:
            return gr.skip()  # no run of this session yet: the values are used when it starts
        values = knobs.live_values(dict(zip(knobs.LIVE, vals)))
        cur = sess.run.trainer.cfg
        changed = {k: v for k, v in values.items() if getattr(cur, k) != v}
        if changed:
            sess.run.trainer.set(**changed)  # validated by the engine; ConfigError -> warning, run untouched
            sess.run.dirty = True
            sess.notice = "live: " + ", ".join(f"{k}={v}" for k, v in changed.items())
        return gr.skip()

    for key, w in zip(knobs.LIVE, live_widgets):
        w.change(set_live, live_widgets, [status], api_name=f"set_{key}", concurrency_limit=None,
                 show_progress="hidden", trigger_mode="always_last", api_visibility="undocumented")

    # ------------------------------------------------------------------------------------------------ preset
    @guard(1 + len(knob_list))
    def load_preset(name: str) -> tuple:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}")
        cfg = knobs.preset_config(name)
        return (cfg.to_dict(), *knobs.values_of(cfg))

    preset.input(load_preset, [preset], [cfg_state, *knob_list], api_name="load_preset")

    # ------------------------------------------------------------------------------------------------ timeline
    @guard(2)
    def scrub(step: float, request: gr.Request) -> tuple:
        run = reg.view(request.session_hash or "anon")
        got = grid_at(run, int(step or 0))
        return got[1], False

    grid_step.release(scrub, [grid_step], [grid, follow], api_name="scrub", concurrency_limit=None)

    @guard(1)
    def make_gif(request: gr.Request) -> str:
        run = reg.view(request.session_hash or "anon")
        grids = (run.snap or run.refresh()).get("grids") or []
        GIF_DIR.mkdir(parents=True, exist_ok=True)
        for old in GIF_DIR.glob("*.gif"):  # bounded disk: Gradio serves its own copy, ours is only needed briefly
            if time.time() - old.stat().st_mtime > FILE_TTL:
                old.unlink(missing_ok=True)
        out = GIF_DIR / f"timeline-run{run.uid}-step{run.snap.get('step', 0)}.gif"
        images.timeline_gif(grids, out)
        return str(out)

    gif_btn.click(make_gif, None, [gif_file], api_name="gif")

    return TrainTab(knobs=widgets, preset=preset, base_cfg=cfg_state, status=status, timer=timer)


def _explain(name: str) -> None:
    with gr.Accordion("explain: what to look for", open=False):
        gr.Markdown(EXPLAIN[name])
