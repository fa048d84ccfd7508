"""The Draw tab: sketch a digit, project it into the latent space (optimise z so G(z) matches it), then let the agent
refine that z step by step, optionally towards a goal digit, beside a random walk with as many moves from the same z
(the baseline that shows whether the agent helps at all)."""

from typing import Any

import gradio as gr
import numpy as np

from ..directions import action_labels
from . import charts, feedback, images, latent
from .context import AppContext
from .explore_tab import BIG, EX, GOALS, _goal, compare, digit_caption, goal_refusal, phi_figure
from .feedback import UserError, guard
from .lessons import EXPLAIN

WALK_SEED = 0  # the random walk's seed: the same drawing gets the same baseline every time

# Gradio 6.31's ImageEditor starts with its "image" tool (hard-coded in the frontend, no parameter), so a visitor
# must find the small Brush icon before a stroke draws anything. This clicks Brush once, the first time the pad is on
# screen (the Draw tab opened). Hooked by build() itself (a gr.HTML's js_on_load); it also works as page JS.
DRAW_JS = """
() => {
  const pick = () => {
    const pad = document.querySelector('#draw-pad');
    if (!pad || pad.offsetParent === null) return;  // not on screen (another tab is open)
    const brush = pad.querySelector('button[aria-label="Brush"]');
    if (!brush) return;
    brush.click();
    obs.disconnect();  // once: after that the visitor's own tool choice stands
  };
  const obs = new MutationObserver(pick);
  obs.observe(document.body, {childList: true, subtree: true, attributes: true,
                              attributeFilter: ['style', 'class', 'hidden']});
  pick();
}
"""


def build(ctx: AppContext) -> dict:
    reg = ctx.registry
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            pad = gr.Sketchpad(label="draw a digit (white background, black ink)", elem_id="draw-pad",
                               canvas_size=(280, 280), image_mode="L", type="numpy", layers=False, transforms=(),
                               brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
            with gr.Row():
                goal = gr.Dropdown(GOALS, value="none", label="goal digit", elem_id="draw-goal")
                steps = gr.Slider(20, 400, value=150, step=10, label="projection steps", elem_id="draw-steps")
            go = gr.Button("project and refine", variant="primary", elem_id="draw-btn")
            gr.Markdown(EXPLAIN["draw"])
        with gr.Column(scale=2):
            # Labels are Markdown above the pictures: a gr.Image label floats over its first frame.
            gr.Markdown("**your drawing → projected G(z\\*) → the agent's last frame**, beside a random walk with as "
                        "many moves from the same z\\* (ΔΦ from the projection and the reward classifier's digit "
                        "under each)")
            frames = gr.Image(show_label=False, elem_id="draw-frames", format="png", image_mode="L",
                              interactive=False, buttons=["download"])
            msg = gr.Markdown("", elem_id="draw-msg")
            phi_plot = gr.Plot(label="potential Φ per step: agent (blue, solid) vs random walk (orange, dashed)",
                               elem_id="draw-phi-plot")
    gr.Markdown("**every step**: the agent (top row) and the random walk (bottom row)")
    step_img = gr.Image(show_label=False, elem_id="draw-step-frames", format="png", image_mode="L",
                        interactive=False, buttons=["download"])
    gr.HTML("", js_on_load=f"({DRAW_JS.strip()})();", padding=False, container=False, elem_id="draw-js")

    def before(target: np.ndarray, proj: np.ndarray, phi: float | None = None, guess: tuple | None = None
               ) -> np.ndarray:
        """The drawing and its projection (while projecting, and when the agent is refused)."""
        cap = [f"Φ = {phi:.2f}"] if phi is not None else []
        return images.stack([images.side([images.tile(target, BIG, "your drawing (28x28)",
                                                      digit_caption(guess, 0, True)),
                                          images.tile(proj, BIG, "projected G(z*)",
                                                      [*cap, *digit_caption(guess, 1, True)])], gap=12)])

    @guard(4)
    def project_and_refine(value: Any, g: Any, n: Any, request: gr.Request) -> Any:
        target = images.sketch_to_digit(value)
        if target is None:
            raise UserError("the canvas is empty: draw a digit first")
        n = 150 if n is None or n == "" else int(n)  # 0 is out of range, not "the default"
        if not 1 <= n <= 1000:
            raise UserError("projection steps must be between 1 and 1000")
        tr = reg.view(request.session_hash or "anon").runner
        gl = _goal(g)
        z = proj = None
        for s, loss, z in latent.project(tr, target, steps=n):
            proj = tr.generate(z).numpy()[0]
            yield before(target, proj), f"projecting… step {s}/{n}, pixel error {loss:.4f}", gr.skip(), gr.skip()
        refusal = goal_refusal(tr, gl)
        if refusal:  # the projection stands; only the agent, which never saw a no-goal state, is refused
            feedback.warn(refusal)
            phi = float(latent.potential(tr, z, gl)[0])
            yield (before(target, proj, phi, latent.guess_digits(tr, np.stack([target, proj]))),
                   f"projected (pixel error {loss:.4f}). ⚠️ **No agent moves: {refusal}.**",
                   charts.to_plot(phi_figure([], [])), None)
            return
        # the agent's greedy moves from the projected z, up to and including its stop
        _, acts = tr.refine(z.to(tr.device), latent.goal_tensor(gl, 1, tr.device))
        agent_acts: list[int] = []
        for a in acts:
            agent_acts.append(int(a[0]))
            if agent_acts[-1] == 0:
                break
        k = latent.directions(tr).shape[0]
        zz = latent.walk_z(z, agent_acts, latent.directions(tr), tr.cfg.delta)
        c = compare(tr, gl, zz, agent_acts, latent.shadow_walk(agent_acts, k, WALK_SEED),
                    lead=[(target, "your drawing (28x28)")], start_title="projected G(z*)")
        labels = [action_labels(k)[a] for a in agent_acts if a != 0]
        stopped = bool(agent_acts) and agent_acts[-1] == 0
        phis = c["agent_phi"]
        text = (f"projected (pixel error {loss:.4f}); the agent made {len(labels)} move(s): "
                f"{', '.join(labels) or 'none'}{' then stop' if stopped else ''}. Φ {phis[0]:.2f} → {phis[-1]:.2f}")
        if c["summary"]:
            text += "  \n" + c["summary"]
        if gl is not None and tr.cfg.beta_goal <= 0:
            text += "  \n(β = 0 in this run: the goal changes the agent's input, not its reward)"
        yield c["big"], text, charts.to_plot(c["fig"]), c["steps"]

    go.click(project_and_refine, [pad, goal, steps], [frames, msg, phi_plot, step_img], api_name="draw_refine",
             **EX)
    return {"pad": pad, "goal": goal}


def demo_digit() -> np.ndarray:
    """A crude hand-drawn '1' as a Sketchpad-like value (for the API and tests)."""
    a = np.full((280, 280), 255, dtype=np.uint8)
    a[40:240, 130:150] = 0
    return a
