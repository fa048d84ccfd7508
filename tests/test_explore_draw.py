"""Explore and Draw against the launched app (gradio_client): the agent's rollout next to a seeded random walk from
the same start (equal-length Φ series from the same Φ, told apart by colour and dash), before/after frames big enough
to see, and a goal-only agent (β > 0) refusing to act without a goal while projection still works."""

import json
import types

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
from gradio_client import handle_file  # noqa: E402
from helpers import launched_app  # noqa: E402
from PIL import Image  # noqa: E402

from dqngan.ui import draw_tab, explore_tab, feedback, latent  # noqa: E402

SLIDERS = [0.0] * explore_tab.MAX_SLIDERS
REFUSAL = "trained only with goal digits (β = 3)"
BIG_PX, STEP_PX = 6 * 28, 4 * 28  # the UX review's minimum: before / after frames at 6x, every step at 4x


def plot_data(out):
    assert isinstance(out, dict) and out.get("type") == "plotly", out
    return json.loads(out["plot"])


def is_skip(out):
    return isinstance(out, dict) and out.get("__type__") == "update" and len(out) == 1


def image_of(out) -> np.ndarray:
    """A gr.Image output (FileData; the app runs on this machine, so its path is readable) as an array."""
    assert isinstance(out, dict) and out.get("path"), out
    return np.asarray(Image.open(out["path"]))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("explore-draw")) as (demo, url):
        yield demo, url




@pytest.fixture
def warned(monkeypatch):
    """Every message the guard / the Draw tab shows as a toast (still shown: the real warn is called too)."""
    seen = []
    real = feedback.warn

    def record(msg):
        seen.append(msg)
        real(msg)

    monkeypatch.setattr(feedback, "warn", record)
    monkeypatch.setattr(explore_tab, "ROLLOUT_DELAY", 0.0)  # the animation's pause, not needed here
    return seen


@pytest.fixture
def goal_run(app, client):
    """This client's session looks at its own run configured with β = 3 (every training episode had a goal)."""
    from dqngan.config import make_config
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer
    from dqngan.ui.session import Run

    demo, _ = app
    cfg = make_config("tiny").replace(beta_goal=3.0)
    run = demo.ctx.registry.own(client.session_hash, lambda: Run(Runner(Trainer(cfg, "cpu")), "goal-only test run"))
    assert run.runner.cfg.beta_goal == 3.0 and demo.ctx.registry.view(client.session_hash) is run
    return run


def drawing(tmp_path):
    p = tmp_path / "one.png"
    Image.fromarray(draw_tab.demo_digit()).save(p)
    return {"background": None, "layers": [], "composite": handle_file(str(p))}


# ---------------------------------------------------------------------------------------------------- pure helpers
def test_random_walk_is_seeded_prefix_stable_and_step_aligned():
    a = latent.random_actions(4, 300, seed=7)
    assert min(a) >= 1 and max(a) <= 8 and len(set(a)) == 8  # every non-stop action, never stop
    assert latent.random_actions(4, 5, seed=7) == a[:5]  # the walk grows with the animation, it is not redrawn
    assert latent.random_actions(4, 20, seed=8) != a[:20]
    walk = latent.shadow_walk([3, 1, 0], 4, seed=7)
    assert walk[:2] == a[:2] and walk[2] == 0  # moves where the agent moved, stops where it stopped
    path = latent.walk_alphas(np.zeros(4), [1, 2, 4, 0], delta=0.5)
    assert [p.tolist() for p in path[1:]] == [[0.5, 0, 0, 0], [0, 0, 0, 0], [0, -0.5, 0, 0], [0, -0.5, 0, 0]]


def test_frames_are_labelled_outside_and_build_returns_its_widgets(app):
    demo, _ = app
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    for eid in ("explore-traj", "explore-steps", "draw-frames", "draw-step-frames"):
        assert blocks[eid].show_label is False, f"{eid}: a gr.Image label floats over the first frame"
    js = [b for b in demo.blocks.values() if isinstance(b, gr.HTML) and 'aria-label="Brush"' in (b.js_on_load or "")]
    assert js, "the Draw tab's brush-by-default script is not on the page"
    with gr.Blocks():
        ex, dr = explore_tab.build(demo.ctx), draw_tab.build(demo.ctx)
    assert isinstance(ex["seed"], gr.Number) and isinstance(ex["goal"], gr.Dropdown) and "sync" in ex
    assert isinstance(dr["pad"], gr.Sketchpad) and isinstance(dr["goal"], gr.Dropdown)


# ---------------------------------------------------------------------------------------------------- explore
def test_rollout_beside_a_random_walk_from_the_same_start(client, warned):
    client.predict(3, "none", api_name="/explore_seed")
    job = client.submit(3, "none", *SLIDERS, api_name="/agent_rollout")
    job.result(timeout=60)
    last = job.outputs()[-1]
    fig = plot_data(last[4])
    agent, walk = fig["data"]
    assert agent["name"] == "agent" and walk["name"].startswith("random walk")
    assert len(agent["y"]) == len(walk["y"]) >= 2 and agent["y"][0] == walk["y"][0]
    assert agent["line"]["color"] != walk["line"]["color"] and agent["line"]["dash"] != walk["line"]["dash"]
    assert "agent ΔΦ" in last[2] and "random walk ΔΦ" in last[2]
    if any(v != agent["y"][0] for v in agent["y"][1:]):  # the agent moved: as many random moves go elsewhere
        assert walk["y"] != agent["y"]
    big, steps = image_of(last[3]), image_of(last[-1])
    assert big.shape[0] >= BIG_PX + 30  # 6x frames plus a title and captions
    assert big.shape[1] >= 3 * BIG_PX  # start, agent's last, random walk's last
    assert steps.shape[0] >= 2 * (STEP_PX + 30)  # two rows (agent, walk) at 4x with captions
    assert not warned
    # seeded: the same seed replays the same walk
    client.predict(3, "none", api_name="/explore_reset")
    job = client.submit(3, "none", *SLIDERS, api_name="/agent_rollout")
    job.result(timeout=60)
    assert plot_data(job.outputs()[-1][4])["data"][1]["y"] == walk["y"]


# ---------------------------------------------------------------------------------------------------- goal-only agent
def test_goal_only_agent_refuses_without_a_goal_and_works_with_one(app, client, goal_run, warned, tmp_path):
    out = client.predict(3, "none", api_name="/explore_seed")
    assert REFUSAL in out[2].replace("**", "").lower()  # said up front, before any click
    # ...and the agent buttons are off until a goal is picked (what the page runs on a goal change and tab open;
    # gradio_client drops button outputs, so the app's own event is called with this session's request)
    demo, _ = app
    (dep,) = [d for d in demo.fns.values() if d.api_name == "explore_buttons"]
    assert [getattr(o, "elem_id", None) for o in dep.outputs] == ["agent-step-btn", "agent-rollout-btn"]
    request = types.SimpleNamespace(session_hash=client.session_hash)
    assert [u.get("interactive") for u in dep.fn("none", request)] == [False, False]
    assert [u.get("interactive") for u in dep.fn("3", request)] == [True, True]
    assert all(is_skip(o) for o in client.predict(3, "none", *SLIDERS, api_name="/agent_step"))
    job = client.submit(3, "none", *SLIDERS, api_name="/agent_rollout")
    job.result(timeout=30)
    assert all(is_skip(o) for o in job.outputs()[-1])
    assert is_skip(client.predict(0, 1, 3, "none", api_name="/interpolate"))
    assert len(warned) == 3 and all(REFUSAL in m and "pick a goal digit" in m for m in warned), warned
    # with a goal the same agent acts
    out = client.predict(3, "3", *SLIDERS, api_name="/agent_step")
    assert "t = 1/" in out[2] and len(plot_data(out[4])["data"]) == 2
    assert client.predict(0, 1, 3, "3", api_name="/interpolate")
    assert len(warned) == 3
    # Draw: the projection is shown, the agent part is refused in the message
    job = client.submit(drawing(tmp_path), "none", 20, api_name="/draw_refine")
    job.result(timeout=60)
    frames, msg, phi, steps = job.outputs()[-1]
    assert "projected" in msg and REFUSAL in msg and "pick a goal digit" in msg
    assert image_of(frames).shape[0] >= BIG_PX and steps is None
    assert not plot_data(phi)["data"] and len(warned) == 4
    job = client.submit(drawing(tmp_path), "3", 20, api_name="/draw_refine")
    job.result(timeout=60)
    frames, msg, phi, steps = job.outputs()[-1]
    assert "projected" in msg and REFUSAL not in msg and "random walk ΔΦ" in msg
    agent, walk = plot_data(phi)["data"]
    assert len(agent["y"]) == len(walk["y"]) and agent["y"][0] == walk["y"][0]
    big = image_of(frames)
    assert big.shape[0] >= BIG_PX + 30 and big.shape[1] >= 4 * BIG_PX
    assert image_of(steps).shape[0] >= 2 * STEP_PX and len(warned) == 4



# ---------------------------------------------------------------------------------------------------- an untrained G
def test_info_says_when_g_still_draws_flat_grey(app, client):
    """An untrained G draws one grey for every z, so a slider move redraws identical pixels: the info says why
    nothing visible happens, names the model's step, and stops saying it once training gives G some contrast."""
    from dqngan.config import make_config
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer
    from dqngan.ui.session import Run

    demo, _ = app
    run = demo.ctx.registry.own(client.session_hash, lambda: Run(Runner(Trainer(make_config("tiny"), "cpu")),
                                                                  "untrained test run"))
    out = client.predict(3, "none", api_name="/explore_seed")
    moved = client.predict(3, "none", *([4.0] + SLIDERS[1:]), api_name="/explore_render")
    for o in (out, moved):
        im = image_of(o[0])
        assert int(im.max()) - int(im.min()) <= explore_tab.FLAT_LEVELS
        assert "almost flat grey" in o[2] and "model at training step 0" in o[2]
    with run.runner.model_access() as t:  # real training, not a doctored G
        for _ in range(300):
            t.train_step()
    out = client.predict(3, "none", api_name="/explore_seed")
    im = image_of(out[0])
    assert int(im.max()) - int(im.min()) > explore_tab.FLAT_LEVELS
    assert "almost flat grey" not in out[2] and "model at training step 300" in out[2]
