"""Composes the app: the tabs, per-session load / unload, URL query strings, and the launch settings."""

import ctypes
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from ..config import PRESETS
from ..process_runner import default_kind
from . import draw_tab, explore_tab, knobs, lessons, models_tab, train_tab
from .context import AppContext, find_shipped

log = logging.getLogger(__name__)

CSS = """
#sample-grid img, #explore-image img, #explore-traj img, #explore-steps img, #interp-image img, #draw-frames img,
#draw-step-frames img, #gif-file img { image-rendering: pixelated; }
#status { min-height: 3.2em; }
.readouts { display: flex; flex-wrap: wrap; gap: 6px; }
.readout { flex: 1 1 90px; text-align: center; padding: 4px 6px; border-radius: 6px;
  background: rgba(127,127,127,0.08); }
.readout-value { font-size: 1.9em; font-weight: 700; line-height: 1.15; font-variant-numeric: tabular-nums; }
.readout-label { font-size: 0.95em; opacity: 0.8; }
.chart-title p { margin: 0 !important; }
.chart-text { font-size: 0.9em; min-height: 1.4em; }
/* Presentation layout (?layout=present or the Classroom checkbox): the lesson text in a left sidebar, no knobs or
   explainers, so the buttons, readouts, sample grid and two key charts fit above the fold at 1280x720. */
body.present #app-intro, body.present #knob-col, body.present .explain, body.present #chart-controls,
body.present #step-n, body.present .chart-text, body.present footer { display: none !important; }
body.present #classroom { position: fixed; left: 0; top: 0; bottom: 0; width: 26vw; overflow-y: auto; z-index: 20;
  background: var(--background-fill-primary); border-right: 1px solid var(--border-color-primary); }
body.present .gradio-container { margin-left: 26vw !important; max-width: 74vw !important; padding-top: 0 !important; }
body.present .readout { padding: 1px 4px; }
body.present .readout-value { font-size: 1.5em; }
/* One line for the step-mode buttons and the speed (stacked, they pushed the sample grid below the fold). */
#part-buttons { align-items: center; }
#speed .wrap { flex-wrap: nowrap; }
body.present #speed [data-testid="block-info"] { display: none; }
body.present #speed { padding: 4px 8px; }
/* Teacher mode (?hide=knobs,models,...): the parts a teacher hides from a class (lessons.HIDEABLE). */
body.hide-knobs #knob-col, body.hide-explain .explain, body.hide-intro #app-intro, body.hide-classroom #classroom,
body.hide-explore #tab-explore-button, body.hide-draw #tab-draw-button, body.hide-models #tab-models-button,
body.hide-reset #reset-btn { display: none !important; }
.model-diagram .node rect { fill: #f4f4f4; stroke: #777; stroke-width: 1.2; }
.model-diagram .node text { font-size: 13px; fill: #222; }
.model-diagram .node text.value { font-size: 12px; font-weight: 700; fill: #0072B2; }
.model-diagram .node.active rect { fill: #FFE9B8; stroke: #E69F00; stroke-width: 4; }
.model-diagram .row-title { font-size: 13px; font-weight: 700; fill: #444; }
.narration-caption { font-size: 1.25em; min-height: 1.6em; font-weight: 600; }
.diagram-box ol.narration { display: none; }
.diagram-box.show-all ol.narration { display: block; }
#keys-help kbd { border: 1px solid var(--border-color-primary); border-radius: 3px; padding: 0 4px; }
"""
# Tooltips on the knobs that lock while training (Gradio has no tooltip parameter; a title attribute does it), alt
# text on the images (gr.Image renders an empty alt), teacher mode and the presentation layout from the URL, and the
# keyboard shortcuts.
JS = """
() => {
  const tip = %s;
  const alts = %s;
  const hideable = %s;
  const mark = () => {
    document.querySelectorAll('.knob-frozen').forEach(e => { if (!e.title) e.title = tip; });
    for (const [id, alt] of Object.entries(alts)) {
      document.querySelectorAll(`#${id} img`).forEach(i => { if (!i.alt) i.alt = alt; });
    }
  };
  mark();
  new MutationObserver(mark).observe(document.body, {childList: true, subtree: true});
  const query = new URLSearchParams(window.location.search);
  for (const part of (query.get('hide') || '').split(',')) {
    if (hideable.includes(part.trim())) document.body.classList.add('hide-' + part.trim());
  }
  // Keyboard shortcuts (listed in the Classroom panel): space = Train / Pause, right arrow = Step, R = Reset,
  // D / G / A = step D, G or the agent alone.
  // Not while typing into a field, and never with a modifier key (browser shortcuts stay the browser's). A focused
  // button keeps its own keys, except the training buttons: after a mouse click on Train, space must pause (the
  // browser would press the focused Train button again).
  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    const control = t && t.tagName === 'BUTTON' && t.closest('#train-buttons, #part-buttons');
    if (ev.ctrlKey || ev.metaKey || ev.altKey || (t && !control && (t.isContentEditable ||
        ['INPUT', 'TEXTAREA', 'SELECT', 'BUTTON'].includes(t.tagName)))) return;
    const click = (id) => { const b = document.querySelector(id); if (b && b.offsetParent !== null) b.click(); };
    const status = (document.querySelector('#status') || {innerText: ''}).innerText;
    if (ev.key === ' ') { ev.preventDefault(); click(status.includes('running') ? '#pause-btn' : '#train-btn'); }
    else if (ev.key === 'ArrowRight') { ev.preventDefault(); click('#step-btn'); }
    else if (ev.key === 'r' || ev.key === 'R') { click('#reset-btn'); }
    else if (ev.key === 'd' || ev.key === 'D') { click('#step-d-btn'); }
    else if (ev.key === 'g' || ev.key === 'G') { click('#step-g-btn'); }
    else if (ev.key === 'a' || ev.key === 'A') { click('#step-agent-btn'); }
    else if (ev.key === 's' || ev.key === 'S') { click('#slowmo-btn'); }
    else if (ev.key === 'n' || ev.key === 'N') { click('#narr-next'); }
  });
  if (query.get('layout') === 'present') {
    document.body.classList.add('present');
    const box = () => document.querySelector('#present-box input');
    const tick = setInterval(() => { const b = box(); if (b) { if (!b.checked) b.click(); clearInterval(tick); } },
                             300);
  }
}
"""
ALT = {"sample-grid": "64 digits drawn from the same fixed noise: raw samples on the left, agent-refined on the right",
       "gif-file": "the sample grid over the whole training timeline, animated",
       "explore-image": "the digit G draws at the current latent z",
       "explore-traj": "the start digit, the agent's last frame and the random walk's last frame, with the change "
                       "in the potential and the classifier's digit under each",
       "explore-steps": "every step of the agent's rollout (top row) and of the random walk from the same start",
       "draw-step-frames": "every step of the agent's moves from your projected drawing, and of a random walk",
       "interp-image": "interpolation between two seeds: raw on top, agent-refined below",
       "draw-frames": "your drawing, its projection into the latent space, then the agent's moves"}

SWITCH_INTERVAL = 0.0005  # seconds; see configure_threads
MALLOC_ARENAS = 2  # see cap_malloc_arenas


def configure_threads() -> None:
    """One intra-op thread on CPU: the trainer thread and Gradio's worker threads otherwise oversubscribe OpenMP on
    small machines, and everything stalls (50x slower steps on 2 cores). DQNGAN_THREADS overrides.

    A short GIL switch interval: torch releases the GIL inside every op, and when an op returns while a request
    handler runs Python, the trainer waits up to the interval (CPython's default 5 ms) to get it back. Measured side by
    side (bench/gil_switch.py), it wins little: training beside a handler busy 30 % of the time ran at 0.72x its alone
    speed with 0.5 ms, 0.68x with 5 ms. Most of the loss is the handlers' own time holding the GIL.
    DQNGAN_SWITCH_INTERVAL (seconds) overrides."""
    n = os.environ.get("DQNGAN_THREADS")
    if n:
        torch.set_num_threads(max(1, int(n)))
    elif not torch.cuda.is_available():
        torch.set_num_threads(1)
    sys.setswitchinterval(float(os.environ.get("DQNGAN_SWITCH_INTERVAL", SWITCH_INTERVAL)))


def cap_malloc_arenas(n: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads created from now on (Gradio's worker threads, the runs' threads).
    glibc gives each thread that allocates under contention an arena of its own, up to 8 per core, and keeps what
    was freed there for that arena's reuse: a class opening the page at once can leave memory in many arenas. The
    training child has MALLOC_ARENA_MAX=2 (process_runner) for the same reason, where it was measured to matter;
    here the gain is within bench/load_test.py's noise (a class of 30 left the server +54 MB with it vs +68 / +78
    MB without in 5-minute runs, +68 MB with it in a 10-minute run). MALLOC_ARENA_MAX, read by glibc at start,
    wins. Returns whether the cap was set (False off glibc)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, n))  # -8 = M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):  # musl and others have no mallopt / no libc.so.6
        return False


def forget_gradio_session(demo: gr.Blocks, sid: str) -> None:
    """Drop a closed tab's Gradio SessionState (a per-session copy of the app's config plus its gr.State values,
    0.5-1.5 MB). Gradio 6.31 only clears the gr.State values of a closed session after an hour and keeps the rest
    until state_session_capacity sessions, so memory grew with every visitor (bench/load_test.py). The app has
    already stopped the session's run, so a tab that reconnects gets fresh state either way."""
    holder = getattr(demo, "state_holder", None)
    try:
        with holder.lock:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
    except AttributeError:  # another Gradio version: the capacity in launch_kwargs still bounds it
        log.debug("no Gradio state holder to clean up")


def launch_kwargs() -> dict[str, Any]:
    """The launch() settings the app needs (CSS/JS moved from Blocks to launch in Gradio 6).

    state_session_capacity: Gradio keeps each session's state (0.5-1.5 MB) until 10000 sessions; closed tabs are
    dropped on unload (forget_gradio_session), and this bounds the rest (tabs whose unload never came): the least
    recently used sessions beyond DQNGAN_STATE_SESSIONS (default 100) are dropped. A visible tab touches its session
    every second (a tab hidden while 100 newer sessions arrived comes back with fresh gr.State)."""
    return {"css": CSS, "js": JS % (repr(knobs.LOCK_TIP), json.dumps(ALT), json.dumps(list(lessons.HIDEABLE))),
            "footer_links": ["api", "gradio", "settings"],
            "state_session_capacity": max(10, int(os.environ.get("DQNGAN_STATE_SESSIONS", 100)))}


def build_demo(checkpoint: str | Path | None = "auto", preset: str | None = None, device: str = "auto",
               max_running: int | None = None, max_runs: int = 4, save_root: str | Path | None = None,
               runner: str | None = None) -> gr.Blocks:
    """The whole app. `checkpoint="auto"` opens on the shipped checkpoint if there is one, else a fresh model of
    `preset` (default: gpu on CUDA, cpu otherwise). `runner`: "process" (each run trains in a child process, the
    default on a CPU) or "thread" (in this process; DQNGAN_RUNNER overrides the default)."""
    configure_threads()
    cap_malloc_arenas()
    # Gradio recomputes a pandas summary of up to 10000 past events after every queued event; on 2 cores that
    # steals the training thread's GIL. Summarise rarely and over fewer events (only its monitoring page uses it).
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "200")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    ck = find_shipped() if checkpoint == "auto" else (Path(checkpoint) if checkpoint else None)
    preset = preset or os.environ.get("DQNGAN_PRESET") or ("gpu" if torch.cuda.is_available() else "cpu")
    max_runs = int(os.environ.get("DQNGAN_MAX_RUNS", max_runs))  # models held in memory at once (idle ones evicted)
    ctx = AppContext(preset=preset, checkpoint=ck, device=device, max_running=max_running, max_runs=max_runs,
                     runner_kind=runner or default_kind())
    if save_root is not None:
        ctx.save_root = Path(save_root)
    ctx.registry.start()
    _ = ctx.registry.base  # build (or load) the shared model now, not on the first visitor's poll

    with gr.Blocks(title="DQN-GAN Lab", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# DQN-GAN Lab\nA DCGAN learns MNIST while a DQN agent learns to steer its latent space "
                    "towards images the (slow) discriminator likes. Train it live, open up the Q-values, explore "
                    "the latent space, or draw a digit and let the agent refine it. Teaching? Pick a lesson below.",
                    elem_id="app-intro")
        classroom = lessons.build_panel()
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train = train_tab.build(ctx)
            with gr.Tab("Explore", id="explore", elem_id="tab-explore") as explore_item:
                explore = explore_tab.build(ctx)
            with gr.Tab("Draw", id="draw", elem_id="tab-draw"):
                draw = draw_tab.build(ctx)
            with gr.Tab("Models", id="models", elem_id="tab-models") as models_item:
                models = models_tab.build(ctx, train.status)
        page = lessons.wire(ctx, classroom, train, explore, draw, tabs)

        demo.load(page["on_load"], None, page["load_outputs"], api_visibility="undocumented").then(
            explore["sync"], explore["sync_inputs"], explore["sync_outputs"], api_visibility="undocumented").then(
            **explore["buttons"], api_visibility="undocumented")
        explore_item.select(explore["sync"], explore["sync_inputs"], explore["sync_outputs"],
                            api_visibility="undocumented").then(**explore["buttons"], api_visibility="undocumented")
        models_item.select(models["refresh"], None, [models["listing"]], api_visibility="undocumented")

        def show_loaded(request: gr.Request) -> tuple:
            """After a checkpoint load or pull: the knobs show the loaded run's settings (Reset still starts from
            the preset, never from the loaded model's hidden settings)."""
            run = ctx.registry.view(request.session_hash or "anon")
            cfg = run.runner.cfg
            name = ctx.preset if ctx.preset in PRESETS else "cpu"
            return train.fill(cfg, knobs.recipe_for(knobs.preset_config(name), cfg, name))

        for event in models["loaded"]:
            event.then(show_loaded, None, train.fill_outputs, api_visibility="undocumented")

        def on_unload(request: gr.Request) -> None:
            """The tab closed (heartbeat lost): stop this session's training now, not when its state expires, and
            free Gradio's copy of the session."""
            sid = request.session_hash or "anon"
            ctx.registry.drop(sid, reason="closed")
            forget_gradio_session(demo, sid)

        demo.unload(on_unload)
    demo.ctx = ctx  # for tests and the benchmark
    return demo
