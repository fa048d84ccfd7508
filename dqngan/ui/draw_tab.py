"""The Draw tab: sketch a digit, project it into the latent space (optimise z so G(z) matches it), then let the agent
refine that z step by step, optionally towards a goal digit."""

from typing import Any

import gradio as gr
import numpy as np
import torch

from ..directions import action_labels, action_moves
from . import charts, images, latent
from .context import AppContext
from .explore_tab import EX, GOALS, _goal
from .feedback import UserError, guard
from .lessons import EXPLAIN


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
            frames = gr.Image(label="your drawing (28x28) → G(z*) projected → agent steps", elem_id="draw-frames",
                              format="png", image_mode="L", interactive=False)
            msg = gr.Markdown("", elem_id="draw-msg")
            phi_plot = gr.Plot(label="potential Φ per agent step", elem_id="draw-phi-plot")

    @guard(3)
    def project_and_refine(value: Any, g: Any, n: Any, request: gr.Request) -> Any:
        target = images.sketch_to_digit(value)
        if target is None:
            raise UserError("the canvas is empty: draw a digit first")
        n = 150 if n is None or n == "" else int(n)  # 0 is out of range, not "the default"
        if not 1 <= n <= 1000:
            raise UserError("projection steps must be between 1 and 1000")
        tr = reg.view(request.session_hash or "anon").trainer
        gl = _goal(g)
        z = None
        for s, loss, z in latent.project(tr, target, steps=n):
            proj = tr.generate(z).numpy()[0]
            yield (images.upscale(images.strip([target, proj]), 4),
                   f"projecting… step {s}/{n}, pixel error {loss:.4f}", gr.skip())
        # the agent's greedy moves from the projected z
        dev = tr.device
        goal_t = latent.goal_tensor(gl, 1, dev)
        _, acts = tr.refine(z.to(dev), goal_t)
        zs, cur = [z], z.clone()
        d = tr.env.directions.detach().float().cpu()
        for a in acts:
            if int(a[0]) == 0:
                break
            cur = cur + action_moves(a.cpu(), d, tr.cfg.delta)
            zs.append(cur)
        zz = torch.cat(zs)
        pics = tr.generate(zz).numpy()
        phis = latent.potential(tr, zz, gl)
        labels = action_labels(d.shape[0])
        moves = [labels[int(a[0])] for a in acts[: len(zs) - 1]]
        stopped = len(acts) > len(zs) - 1
        text = (f"projected (pixel error {loss:.4f}); the agent made {len(moves)} move(s): "
                f"{', '.join(moves) or 'none'}{' then stop' if stopped else ''}. "
                f"Φ {phis[0]:.2f} → {phis[-1]:.2f}")
        if gl is not None and tr.cfg.beta_goal <= 0:
            text += " (β = 0 in this run: the goal changes the agent's input, not its reward)"
        yield (images.upscale(images.strip([target, *pics]), 4), text,
               charts.to_plot(charts.trajectory_figure(list(map(float, phis)), "Φ")))

    go.click(project_and_refine, [pad, goal, steps], [frames, msg, phi_plot], api_name="draw_refine",
             **EX)
    return {"pad": pad}


def demo_digit() -> np.ndarray:
    """A crude hand-drawn '1' as a Sketchpad-like value (for the API and tests)."""
    a = np.full((280, 280), 255, dtype=np.uint8)
    a[40:240, 130:150] = 0
    return a
