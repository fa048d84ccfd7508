"""The Explore tab (latent explorer): a seed and a slider per direction move z; the image, Φ and the agent's Q for
every action follow at once; "agent step" / "agent rollout" let the agent move z (the sliders move with it), shown
beside a seeded random walk with as many moves from the same start (the baseline that tells "helps" from "does
nothing"); interpolation between seeds; and the latent map (Φ over a plane of two directions, the agent's path on
top).

It works on whatever run the session looks at (its own, a watched one, or the shared model)."""

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np
import torch

from ..directions import action_labels
from . import charts, images, latent
from .context import AppContext
from .feedback import UserError, guard
from .lessons import EXPLAIN

MAX_SLIDERS = 16  # directions beyond this still move (the agent can use them) but have no slider
SPAN = 4.0  # slider range in standard deviations
SCALE = 8  # 28 px digits shown at 224 px
BIG = 6  # before / after frames: 168 px
STEP_SCALE = 4  # every step's frame: 112 px
MAX_STEP_FRAMES = 10  # longer episodes show 10 evenly spaced steps (first and last included): fits ~1200 px at 4x
AGENT_COLOR, WALK_COLOR = "#0072B2", "#E69F00"  # Okabe-Ito blue / orange (colour-blind safe), also told apart by dash
FLAT_LEVELS = 4  # an image whose pixels span at most this many grey levels (of 255) looks flat
ROLLOUT_DELAY = 0.35  # seconds between animation frames
# Explore / Draw inference shares one queue lane: a few at once (they are small), without starving the trainer.
EX = {"concurrency_id": "explore", "concurrency_limit": 4}
GOALS = ["none"] + [str(i) for i in range(10)]


def _goal(g: Any) -> int | None:
    if g in (None, "", "none"):
        return None
    if str(g) not in GOALS:
        raise UserError(f"a goal is a digit 0-9 or 'none', got {g!r}")
    return int(g)


def _seed(s: Any) -> int:
    if s is None:
        raise UserError("enter a seed (a whole number)")
    s = float(s)
    if not s.is_integer() or not 0 <= s < 2**31:
        raise UserError(f"a seed is a whole number from 0 to {2**31 - 1}, got {s}")
    return int(s)


def new_state(k: int) -> dict:
    return {"t": 0, "extra": [0.0] * max(0, k - MAX_SLIDERS), "path": [], "phis": [], "acts": []}


def goal_refusal(tr: Any, g: int | None) -> str | None:
    """Why the agent must not act without a goal, or None. With β > 0 every training episode had a goal digit
    (env goals=True), so a no-goal state is one the Q-network has never seen: its moves there are arbitrary."""
    beta = float(tr.cfg.beta_goal)
    if g is not None or beta <= 0:
        return None
    return (f"this agent was trained only with goal digits (β = {beta:g}): pick a goal digit; without one its moves "
            f"are unreliable")


def require_goal(tr: Any, g: int | None) -> None:
    msg = goal_refusal(tr, g)
    if msg:
        raise UserError(msg)


# ------------------------------------------------------------------------------------------------ agent vs random walk
def _r(x: float) -> float | None:
    return float(f"{x:.4g}") if math.isfinite(x) else None


def phi_figure(agent: Sequence[float], walk: Sequence[float]) -> dict:
    """Φ per step for the agent and the random walk: colour *and* dash and marker tell them apart (a plain dict, as in
    charts.py)."""
    def trace(ys: Sequence[float], name: str, color: str, dash: str, symbol: str) -> dict:
        return {"type": "scatter", "mode": "lines+markers", "x": list(range(len(ys))), "y": [_r(float(y)) for y in ys],
                "name": name, "line": {"color": color, "width": 3, "dash": dash},
                "marker": {"color": color, "symbol": symbol, "size": 8}}

    data = [trace(agent, "agent", AGENT_COLOR, "solid", "circle"),
            trace(walk, "random walk (as many moves)", WALK_COLOR, "dash", "square")] if len(agent) else []
    # The legend sits under the x-axis title (not on it), as in charts.py.
    lay = {"height": charts.HEIGHT, "margin": {"l": 50, "r": 10, "t": 10, "b": 95},
           "xaxis": {"title": {"text": "agent step"}}, "yaxis": {"title": {"text": "Φ"}},
           "legend": {"orientation": "h", "x": 0, "y": -0.32, "yanchor": "top"}, "hovermode": "x unified",
           "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(127,127,127,0.06)"}
    if 0 < len(agent) <= 13:
        lay["xaxis"]["dtick"] = 1  # whole steps only
    if not data:
        lay["xaxis"]["visible"] = lay["yaxis"]["visible"] = False
        lay["annotations"] = [{"text": "no agent steps yet", "showarrow": False, "xref": "paper", "yref": "paper",
                               "x": 0.5, "y": 0.5, "font": {"color": "#888"}}]
    return {"data": data, "layout": lay}


def digit_caption(guess: tuple | None, i: int, long: bool = False) -> list[str]:
    """The reward classifier's digit for frame i as a caption line (none without a classifier)."""
    if guess is None:
        return []
    d, p = int(guess[0][i]), float(guess[1][i])
    return [f"classifier: {d} ({p:.0%})" if long else f"digit {d} ({p:.0%})"]


def _dphi(phis: np.ndarray, i: int) -> str:
    return f"Φ = {phis[0]:.2f}" if i == 0 else f"ΔΦ = {phis[i] - phis[0]:+.2f}"


def step_row(frames: np.ndarray, phis: np.ndarray, acts: Sequence[int], labels: Sequence[str], guess: tuple | None,
             name: str) -> np.ndarray:
    """A named row of every step's frame at 4x, with t, the move, ΔΦ from the start and the digit under each."""
    n = len(frames)
    idx = list(range(n)) if n <= MAX_STEP_FRAMES else sorted(set(np.linspace(0, n - 1, MAX_STEP_FRAMES).round()
                                                                         .astype(int).tolist()))
    tiles = []
    for i in idx:
        move = "start" if i == 0 else labels[int(acts[i - 1])]
        cap = [f"t={i} {move}", _dphi(phis, i), *digit_caption(guess, i)]
        tiles.append(images.tile(frames[i], STEP_SCALE, caption=cap, size=12))
    row = images.side(tiles, gap=6)
    skipped = f" ({len(idx)} of its {n} frames, evenly spaced)" if n > MAX_STEP_FRAMES else ""
    return np.concatenate([images.heading(name + skipped, row.shape[1]), row])


def compare(tr: Any, g: int | None, agent_z: torch.Tensor, agent_acts: Sequence[int], walk_acts: Sequence[int],
            lead: Sequence[tuple[np.ndarray, str]] = (), start_title: str = "start") -> dict:
    """The agent's path next to a random walk from the same start, as pictures, a Φ chart and a sentence.

    agent_z: (n + 1, z_dim) latents, the start first; agent_acts / walk_acts: the n actions of each (step-aligned, see
    latent.shadow_walk). lead: extra (28x28 frame, title) tiles before the start (Draw's drawing). Returns big (start,
    agent's last, walk's last frame at 6x), steps (both paths at 4x), fig, summary, agent_phi, walk_phi."""
    agent_z = agent_z.detach().float().cpu()
    walk_z = latent.walk_z(agent_z[:1], walk_acts, latent.directions(tr), tr.cfg.delta)
    n = len(agent_z)
    both = torch.cat([agent_z, walk_z[1:]])  # the shared start once: both series start at exactly the same Φ
    pics = tr.generate(both).numpy()
    phi = latent.potential(tr, both, g).astype(np.float64)
    lead_pics = np.stack([f for f, _ in lead]) if lead else np.zeros((0, 28, 28), np.uint8)
    guess_all = latent.guess_digits(tr, np.concatenate([lead_pics, pics]))
    lg = None if guess_all is None else tuple(a[:len(lead)] for a in guess_all)
    guess = None if guess_all is None else tuple(a[len(lead):] for a in guess_all)
    a_pics, w_pics = pics[:n], np.concatenate([pics[:1], pics[n:]])
    a_phi, w_phi = phi[:n], np.concatenate([phi[:1], phi[n:]])
    ag = None if guess is None else tuple(a[:n] for a in guess)
    wg = None if guess is None else tuple(np.concatenate([a[:1], a[n:]]) for a in guess)
    moves = sum(1 for a in agent_acts if int(a) != 0)
    tiles = [images.tile(f, BIG, t, digit_caption(lg, i, True)) for i, (f, t) in enumerate(lead)]
    tiles.append(images.tile(a_pics[0], BIG, start_title, [_dphi(a_phi, 0), *digit_caption(ag, 0, True)]))
    after = f"after {moves} move{'s' * (moves != 1)}"
    if n > 1:
        tiles.append(images.tile(a_pics[-1], BIG, "agent",
                                 [after, _dphi(a_phi, n - 1), *digit_caption(ag, n - 1, True)]))
        tiles.append(images.tile(w_pics[-1], BIG, "random walk",
                                 [after, _dphi(w_phi, n - 1), *digit_caption(wg, n - 1, True)]))
    big = images.stack([images.side(tiles, gap=12)])
    steps = summary = None
    if n > 1:
        labels = action_labels(latent.directions(tr).shape[0])
        steps = images.stack([step_row(a_pics, a_phi, agent_acts, labels, ag, "agent"),
                              step_row(w_pics, w_phi, walk_acts, labels, wg, "random walk (seeded, as many moves)")],
                             gap=14)
        da, dw = a_phi[-1] - a_phi[0], w_phi[-1] - w_phi[0]
        verdict = ("the agent beat this random walk" if da > dw + 1e-6 else
                   "this random walk did as well or better")
        verdict += "; one start proves little: try other seeds"
        summary = (f"after {moves} move{'s' * (moves != 1)}: **agent ΔΦ = {da:+.3f}**, **random walk ΔΦ = {dw:+.3f}** "
                   f"(same start, as many random moves; {verdict})")
    return {"big": big, "steps": steps, "fig": phi_figure(a_phi, w_phi), "summary": summary,
            "agent_phi": a_phi.tolist(), "walk_phi": w_phi.tolist()}


def build(ctx: AppContext) -> dict:
    reg = ctx.registry

    def runner_of(request: gr.Request) -> Any:
        return reg.view(request.session_hash or "anon").runner

    k0 = ctx.base_config().n_dirs
    with gr.Row():
        seed = gr.Number(0, label="seed", precision=0, minimum=0, elem_id="explore-seed", scale=2)
        rnd = gr.Button("random seed", elem_id="explore-random", scale=1)
        goal = gr.Dropdown(GOALS, value="none", label="goal digit (used when β > 0)", elem_id="explore-goal",
                           scale=1)
        back = gr.Button("↺ back to the seed", elem_id="explore-reset", scale=1)
    state = gr.State(new_state(k0))
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            gr.Markdown("**G(z)** at the seed plus the sliders")
            img = gr.Image(show_label=False, elem_id="explore-image", format="png", image_mode="L",
                           interactive=False, height=260, buttons=["download"])
            info = gr.Markdown("", elem_id="explore-info")
            with gr.Row():
                step_btn = gr.Button("agent step ▸", elem_id="agent-step-btn", variant="primary")
                roll_btn = gr.Button("agent rollout ▶", elem_id="agent-rollout-btn")
        with gr.Column(scale=2):
            q_plot = gr.Plot(label="agent's Q-value for every action at this z (outlined orange = its choice)",
                             elem_id="explore-q-plot")
            with gr.Accordion("explain: what to look for", open=False):
                gr.Markdown(EXPLAIN["explore"])
    with gr.Accordion("direction sliders (α, in standard deviations)", open=True):
        sliders = []
        with gr.Row():
            for i in range(MAX_SLIDERS):
                sliders.append(gr.Slider(-SPAN, SPAN, value=0, step=0.05, label=f"d{i + 1}",
                                         elem_id=f"explore-d{i + 1}", visible=i < k0, min_width=180))
    # Labels kept outside the pictures (a gr.Image label floats over its top-left corner, i.e. over the first frame).
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            gr.Markdown("**before → after**: the start, the agent's last frame, and a random walk's with as many moves "
                        "(ΔΦ from the start and the reward classifier's digit under each)")
            traj = gr.Image(show_label=False, elem_id="explore-traj", format="png", image_mode="L",
                            interactive=False, buttons=["download"])
        traj_plot = gr.Plot(label="potential Φ per step: agent (blue, solid) vs random walk (orange, dashed)",
                            elem_id="explore-traj-plot")
    gr.Markdown("**every step**: the agent (top row) and the random walk (bottom row)")
    steps_img = gr.Image(show_label=False, elem_id="explore-steps", format="png", image_mode="L", interactive=False,
                         buttons=["download"])

    with gr.Accordion("interpolate between two seeds", open=False):
        with gr.Row():
            seed_a = gr.Number(0, label="seed A", precision=0, minimum=0, elem_id="interp-a")
            seed_b = gr.Number(1, label="seed B", precision=0, minimum=0, elem_id="interp-b")
            n_frames = gr.Slider(3, 16, value=10, step=1, label="frames", elem_id="interp-n")
            interp_btn = gr.Button("interpolate", elem_id="interp-btn")
        gr.Markdown("raw (top) and agent-refined (bottom)")
        interp_img = gr.Image(show_label=False, elem_id="interp-image", format="png", image_mode="L",
                              interactive=False)

    with gr.Accordion("latent map: Φ over the plane of two directions through z", open=False):
        with gr.Row():
            dir_a = gr.Dropdown([f"d{i + 1}" for i in range(k0)], value="d1", label="x direction",
                                elem_id="map-a")
            dir_b = gr.Dropdown([f"d{i + 1}" for i in range(k0)], value="d2" if k0 > 1 else "d1",
                                label="y direction", elem_id="map-b")
            span = gr.Slider(0.5, 6, value=3, step=0.5, label="half-width (σ)", elem_id="map-span")
            res = gr.Slider(9, 41, value=25, step=2, label="resolution", elem_id="map-res")
            thumbs = gr.Checkbox(True, label="thumbnails under the heatmap", elem_id="map-thumbs")
            map_btn = gr.Button("draw map", elem_id="map-btn")
        map_plot = gr.Plot(label="latent map", elem_id="explore-map")
        gr.Markdown(EXPLAIN["map"])

    # ------------------------------------------------------------------------------------------------ helpers
    def alphas_of(slider_vals: tuple, st: dict, k: int) -> np.ndarray:
        vals = [float(v or 0.0) for v in slider_vals[: min(k, MAX_SLIDERS)]]
        extra = list(st.get("extra", []))[: max(0, k - MAX_SLIDERS)]
        extra += [0.0] * (max(0, k - MAX_SLIDERS) - len(extra))
        return np.array(vals + extra, dtype=np.float64)

    def view(tr: Any, s: int, alphas: np.ndarray, st: dict, g: int | None, chosen_note: str = "") -> tuple:
        z = latent.z_at(tr, s, alphas)
        pixels = latent.image(tr, z)[0]
        im = images.upscale(pixels, SCALE)
        q = latent.q_values(tr, z, st["t"], g)[0]
        labels = action_labels(len(alphas))
        phi = float(latent.potential(tr, z, g)[0])
        best = int(np.argmax(q))
        text = (f"**Φ = {phi:.3f}** · |z| = {float(z.norm()):.2f} · episode step t = {st['t']}/{tr.cfg.horizon} · "
                f"agent would pick **{labels[best]}** (Q = {q[best]:.3f}) · model at training step {tr.step_count:,}")
        if g is not None and tr.cfg.beta_goal <= 0:
            text += "  \n(β = 0 in this run, so the goal digit changes the agent's input but not Φ)"
        refusal = goal_refusal(tr, g)
        if refusal:
            text += f"  \n⚠️ **{refusal[0].upper() + refusal[1:]}.** The agent buttons wait for a goal."
        if int(pixels.max()) - int(pixels.min()) <= FLAT_LEVELS:  # early in training G draws one grey for every z
            text += ("  \nG still draws an almost flat grey image (early training), so the sliders change little you "
                     "can see yet: watch Φ and the Q bars, or train longer")
        if chosen_note:
            text += "  \n" + chosen_note
        return im, charts.to_plot(charts.q_bar_figure(labels, q)), text, phi

    def traj_outputs(tr: Any, s: int, st: dict, g: int | None) -> tuple:
        """(before/after picture, Φ chart, every-step picture, summary) of the path so far and its random walk."""
        path = st["path"]
        if not path:
            return None, charts.to_plot(phi_figure([], [])), None, None
        acts = [int(a) for a in st.get("acts", [])]
        if len(acts) != len(path) - 1:  # a state from before actions were recorded: count every step as a move
            acts = [1] * (len(path) - 1)
        walk = latent.shadow_walk(acts, len(path[0]), s)  # seeded by the seed: the same walk on every replay
        c = compare(tr, g, torch.cat([latent.z_at(tr, s, np.array(a)) for a in path]), acts, walk)
        return c["big"], charts.to_plot(c["fig"]), c["steps"], c["summary"]

    def slider_updates(alphas: np.ndarray, k: int) -> list:
        return [gr.update(value=float(np.clip(alphas[i], -SPAN, SPAN)), visible=True) if i < k
                else gr.update(visible=False) for i in range(MAX_SLIDERS)]

    # ------------------------------------------------------------------------------------------------ handlers
    n_render = 4

    @guard(n_render)
    def render(request: gr.Request, s: Any, g: Any, st: dict, *vals: Any) -> tuple:
        tr = runner_of(request)
        k = latent.directions(tr).shape[0]
        alphas = alphas_of(vals, st, k)
        im, qp, text, _ = view(tr, _seed(s), alphas, st, _goal(g))
        return im, qp, text, st

    render_io = dict(inputs=[seed, goal, state, *sliders], outputs=[img, q_plot, info, state])
    for sl in sliders:
        sl.input(render, **render_io, trigger_mode="always_last", show_progress="hidden", **EX,
                 api_visibility="undocumented")
    goal.input(render, **render_io, api_name="explore_render", show_progress="hidden", **EX)

    reset_outs = [img, q_plot, info, state, traj, traj_plot, *sliders, steps_img]  # new outputs go last: API order

    @guard(len(reset_outs))
    def restart(s: Any, g: Any, request: gr.Request) -> tuple:
        """Back to z(seed): sliders to 0, episode clock to 0, no trajectory; also syncs the slider count."""
        run = reg.view(request.session_hash or "anon")
        tr = run.runner
        k = latent.directions(tr).shape[0]
        st = new_state(k)
        st["uid"] = run.uid
        s = _seed(s)
        alphas = np.zeros(k)
        im, qp, text, phi = view(tr, s, alphas, st, _goal(g))
        st["path"], st["phis"], st["acts"] = [alphas.tolist()], [phi], []
        big, tp, steps, _ = traj_outputs(tr, s, st, _goal(g))
        reg.session(request.session_hash or "anon").explore_uid = run.uid
        return (im, qp, text, st, big, tp, *slider_updates(alphas, k), steps)

    @guard(2)
    def agent_buttons(g: Any, request: gr.Request) -> tuple:
        """The agent buttons are off while the agent must not act (a goal-only agent without a goal); `info` says
        why."""
        ok = goal_refusal(runner_of(request), _goal(g)) is None
        return gr.update(interactive=ok), gr.update(interactive=ok)

    buttons = dict(fn=agent_buttons, inputs=[goal], outputs=[step_btn, roll_btn], show_progress="hidden", **EX)
    goal.input(**buttons, api_name="explore_buttons", api_visibility="undocumented")
    seed.submit(restart, [seed, goal], reset_outs, api_name="explore_seed", **EX)
    back.click(restart, [seed, goal], reset_outs, api_name="explore_reset", **EX)

    @guard(1 + len(reset_outs))
    def random_seed(g: Any, request: gr.Request) -> tuple:
        s = random.randrange(0, 100_000)
        return (s, *restart(s, g, request))

    rnd.click(random_seed, [goal], [seed, *reset_outs], api_name="explore_random", **EX)

    step_outs = [img, q_plot, info, state, traj, traj_plot, *sliders, dir_a, dir_b, steps_img]

    def map_axes(st: dict) -> tuple:
        """Point the latent map at the two directions the agent moved along most (so its path shows on the map)."""
        path = np.array(st.get("path") or [])
        if len(path) < 2 or path.shape[1] < 2:
            return gr.skip(), gr.skip()
        moved = np.abs(path - path[0]).max(axis=0)
        i, j = (int(x) for x in np.argsort(-moved, kind="stable")[:2])
        return gr.update(value=f"d{i + 1}"), gr.update(value=f"d{j + 1}")

    def one_step(tr: Any, s: int, g: int | None, alphas: np.ndarray, st: dict) -> tuple[tuple, bool]:
        if st["t"] >= tr.cfg.horizon:
            im, qp, text, _ = view(tr, s, alphas, st, g, "the episode is over (t = T): press 'back to the seed'")
            big, tp, steps, _ = traj_outputs(tr, s, st, g)
            return (im, qp, text, st, big, tp, *slider_updates(alphas, len(alphas)), gr.skip(), gr.skip(), steps), True
        if not st["path"]:
            st = dict(st, path=[alphas.tolist()], acts=[],
                      phis=[float(latent.potential(tr, latent.z_at(tr, s, alphas), g)[0])])
        a, label, _, new = latent.greedy_move(tr, alphas, s, st["t"], g)
        st = dict(st, t=st["t"] + 1, acts=list(st.get("acts", [])) + [a])
        if len(new) > MAX_SLIDERS:
            st["extra"] = new[MAX_SLIDERS:].tolist()
        clipped = bool(np.any(np.abs(new[:MAX_SLIDERS]) > SPAN))
        im, qp, text, phi = view(tr, s, new, st, g)
        note = "■ the agent chose **stop**: it expects no move to raise Φ" if a == 0 else f"moved **{label}**"
        if clipped:
            note += f" (beyond ±{SPAN}σ: the slider shows the edge, z keeps the true value)"
        st["path"] = st["path"] + [new.tolist()]
        st["phis"] = st["phis"] + [phi]
        big, tp, steps, summary = traj_outputs(tr, s, st, g)
        text = text + "  \n" + note + ("  \n" + summary if summary else "")
        return (im, qp, text, st, big, tp, *slider_updates(new, len(new)), *map_axes(st), steps), a == 0

    @guard(len(step_outs))
    def agent_step(request: gr.Request, s: Any, g: Any, st: dict, *vals: Any) -> tuple:
        tr = runner_of(request)
        g = _goal(g)
        require_goal(tr, g)
        alphas = alphas_of(vals, st, latent.directions(tr).shape[0])
        out, _ = one_step(tr, _seed(s), g, alphas, st)
        return out

    step_btn.click(agent_step, [seed, goal, state, *sliders], step_outs, api_name="agent_step",
                   **EX)

    @guard(len(step_outs))
    def agent_rollout(request: gr.Request, s: Any, g: Any, st: dict, *vals: Any) -> Any:
        tr = runner_of(request)
        s, g = _seed(s), _goal(g)
        require_goal(tr, g)
        alphas = alphas_of(vals, st, latent.directions(tr).shape[0])
        for _ in range(tr.cfg.horizon):
            out, stopped = one_step(tr, s, g, alphas, st)
            yield out
            st = out[3]
            alphas = np.array(st["path"][-1]) if st["path"] else alphas
            if stopped or st["t"] >= tr.cfg.horizon:
                return
            time.sleep(ROLLOUT_DELAY)

    roll_btn.click(agent_rollout, [seed, goal, state, *sliders], step_outs, api_name="agent_rollout",
                   **EX)

    # ------------------------------------------------------------------------------------------------ interpolate
    @guard(1)
    def interpolate(a: Any, b: Any, n: Any, g: Any, request: gr.Request) -> np.ndarray:
        tr = runner_of(request)
        n = int(n or 10)
        if not 2 <= n <= 32:
            raise UserError("frames must be between 2 and 32")
        z_dim = tr.cfg.z_dim
        zs = latent.slerp(latent.seed_z(z_dim, _seed(a)), latent.seed_z(z_dim, _seed(b)), n)
        gl = _goal(g)
        require_goal(tr, gl)  # the refined row would be the agent acting without the goal it always had
        goal_t = None if gl is None else torch.full((n,), gl, dtype=torch.long, device=tr.device)
        raw = tr.generate(zs).numpy()
        refined = tr.generate(zs, refine=True, goal=goal_t).numpy()
        return images.upscale(images.rows(images.strip(raw), images.strip(refined)), 3)

    interp_btn.click(interpolate, [seed_a, seed_b, n_frames, goal], [interp_img], api_name="interpolate",
                     **EX)

    # ------------------------------------------------------------------------------------------------ latent map
    @guard(1)
    def latent_map(request: gr.Request, a: str, b: str, half: float, r: Any, with_thumbs: bool, s: Any, g: Any,
                   st: dict, *vals: Any) -> Any:
        tr = runner_of(request)
        k = latent.directions(tr).shape[0]
        try:
            i, j = int(str(a).lstrip("d")) - 1, int(str(b).lstrip("d")) - 1
        except ValueError:
            raise UserError("pick two directions like d1 and d2") from None
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise UserError(f"pick two different directions among d1..d{k}")
        r = int(r or 25)
        if not 5 <= r <= 61:
            raise UserError("resolution must be between 5 and 61")
        half = float(half or 3)
        s, gl = _seed(s), _goal(g)
        alphas = alphas_of(vals, st, k)
        u, v, zs = latent.plane(tr, s, alphas, i, j, half, r)
        phi = latent.potential(tr, zs, gl).reshape(r, r)
        path = [(p[i], p[j]) for p in st.get("path", []) if len(p) > max(i, j)]
        uri = extent = None
        if with_thumbs:
            m = 9
            mu, mv, mz = latent.plane(tr, s, alphas, i, j, half, m)
            ims = tr.generate(mz).numpy().reshape(m, m, 28, 28)[::-1]  # rows top = highest alpha_j
            uri = images.data_uri(images.mosaic(ims.reshape(-1, 28, 28), m, m))
            cw = 2 * half / (m - 1)
            extent = (float(mu[0] - cw / 2), float(mu[-1] + cw / 2), float(mv[0] - cw / 2), float(mv[-1] + cw / 2))
        fig = charts.latent_map_figure(u, v, phi, (f"α d{i + 1}", f"α d{j + 1}"), path, uri, extent)
        return charts.to_plot(fig)

    map_btn.click(latent_map, [dir_a, dir_b, span, res, thumbs, seed, goal, state, *sliders], [map_plot],
                  api_name="latent_map", **EX)

    # ------------------------------------------------------------------------------------------------ sync
    sync_outs = [dir_a, dir_b, *reset_outs]

    @guard(len(sync_outs))
    def sync(request: gr.Request, s: Any, g: Any, st: dict, *vals: Any) -> tuple:
        """On load / tab open: if the viewed run changed (or on first visit), match the sliders and map choices to its
        K and redraw from the seed; otherwise keep where the user was and redraw it with the model as it is now (it
        may have trained since the last draw)."""
        sid = request.session_hash or "anon"
        sess, run = reg.session(sid), reg.view(sid)
        # page load and a tab click both sync; they can overlap on a busy machine. Serialised here, and judged by
        # what the server last drew, the second one redraws in place instead of resetting a slider the user moved.
        with sess.explore_lock:
            if (st and st.get("uid") == run.uid) or sess.explore_uid == run.uid:
                tr = run.runner
                k = latent.directions(tr).shape[0]
                st = st or new_state(k)
                im, qp, text, _ = view(tr, _seed(s), alphas_of(vals, st, k), st, _goal(g))
                return (gr.skip(), gr.skip(), im, qp, text, *(gr.skip() for _ in sync_outs[5:]))
            tr = run.runner
            k = latent.directions(tr).shape[0]
            choices = [f"d{i + 1}" for i in range(k)]
            out = (gr.update(choices=choices, value="d1"),
                   gr.update(choices=choices, value=choices[min(1, k - 1)]), *restart(s, g, request))
            sess.explore_uid = run.uid
            return out

    return {"sync": sync, "sync_inputs": [seed, goal, state, *sliders], "sync_outputs": sync_outs, "seed": seed,
            "goal": goal, "buttons": buttons}
