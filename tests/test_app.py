"""The Gradio app: pure UI helpers (charts, knobs, images, session registry) and the launched app over gradio_client
(train, poll with version-skip, pause, step, live knobs, bad inputs, the training cap, unload cleanup, explore, draw,
models, lessons, Hub buttons against the fake Hub)."""

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "0.5")  # unload fires within ~1 s of a client closing

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from helpers import launched_app, wait_for  # noqa: E402

from dqngan.ui import charts, images, knobs  # noqa: E402
from dqngan.ui.session import Busy, Registry, Run  # noqa: E402

N_SLIDERS = 16


# ---------------------------------------------------------------------------------------------------- helpers
def poll(client):
    return client.predict(api_name="/poll")


def plot_data(out):
    assert isinstance(out, dict) and out.get("type") == "plotly", out
    return json.loads(out["plot"])


def is_skip(out):
    return isinstance(out, dict) and out.get("__type__") == "update" and len(out) == 1


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free port: a fresh tiny model (no shipped checkpoint), one training slot."""
    with launched_app(tmp_path_factory.mktemp("app")) as (demo, url):
        yield demo, url




def own_run(demo, client):
    sess = demo.ctx.registry._sessions.get(client.session_hash)
    return sess.run if sess else None


# ---------------------------------------------------------------------------------------------------- pure helpers
def test_downsample_keeps_first_and_last_and_bounds_size():
    x = list(range(5000))
    xs, ys = charts.downsample(x, x, 200)
    assert len(xs) <= 200 and xs[0] == 0 and xs[-1] == 4999 and xs == ys


def test_ema_smoothing_is_debiased_and_skips_nan():
    assert charts.ema_smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)
    out = charts.ema_smooth([1.0, float("nan"), 3.0], 0.5)
    assert math.isnan(out[1]) and out[0] == 1.0 and 1.0 < out[2] < 3.0


def test_line_figure_is_small_json_without_nan():
    n = 2000
    hist = {"d_loss": {"step": list(range(n)), "value": [float("nan") if i == 5 else 0.123456789 * i
                                                        for i in range(n)]},
            "td_loss": {"step": list(range(n)), "value": [1e-3] * n}}
    fig = charts.line_figure(hist, [("d_loss", "D"), ("td_loss", "TD", "y2")], smoothing=0.6)
    text = charts.to_json(fig)  # allow_nan=False: would raise on NaN
    assert len(text) < 40_000
    assert {t["yaxis"] for t in fig["data"]} == {"y", "y2"} and "yaxis2" in fig["layout"]
    assert charts.line_figure({}, [("d_loss", "D")])["layout"]["annotations"]  # "waiting..." note when empty


def test_q_bar_highlights_the_chosen_action_even_at_zero():
    fig = charts.q_bar_figure(["stop", "+d1", "-d1"], [0.1, 0.5, -0.2])
    colors = fig["data"][0]["marker"]["color"]
    assert colors[1] != colors[2] and fig["data"][0]["marker"]["line"]["width"][1] > 0
    # a greedy 'stop' with Q = 0 has a zero-height bar: the arrow still points at it
    fig = charts.q_bar_figure(["stop", "+d1", "-d1"], [0.0, -0.5, -0.2])
    (arrow,) = fig["layout"]["annotations"]
    assert arrow["x"] == "stop" and arrow["showarrow"] and "stop" in arrow["text"]


def test_compared_lines_differ_by_more_than_hue():
    hist = {k: {"step": [1, 2, 3], "value": [0.1, 0.2, 0.3]} for k in ("d_real", "d_fake", "d_refined")}
    fig = charts.line_figure(hist, [("d_real", "a"), ("d_fake", "b"), ("d_refined", "c")])
    styles = {(t["line"]["color"], t["line"]["dash"]) for t in fig["data"]}
    assert len({d for _, d in styles}) == 3 and {c for c, _ in styles} <= set(charts.OKABE_ITO.values())


def test_window_keeps_only_recent_steps():
    steps = list(range(0, 30_000, 10))
    x, y = charts.window(steps, steps, 500)
    assert x[0] >= steps[-1] - 500 and x[-1] == steps[-1] and x == y
    assert charts.window(steps, steps, None)[0] == steps
    hist = {"d_loss": {"step": steps, "value": [1.0] * len(steps)}}
    fig = charts.line_figure(hist, [("d_loss", "D")], last=500)
    assert min(fig["data"][0]["x"]) >= 29_490


def test_heatmap_labels_every_row():
    labels = ["stop"] + [f"{s}d{i}" for i in range(1, 9) for s in "+-"]
    fig = charts.q_heatmap_figure({"step": [1, 2], "value": [[0.0] * 17, [0.1] * 17]}, labels)
    assert fig["layout"]["yaxis"]["tickvals"] == labels


def test_knobs_show_train_g_and_reset_edits():
    cfg = knobs.preset_config("agent")  # G frozen
    vals = dict(zip(knobs.KEYS, knobs.values_of(cfg)))
    assert vals["train_g"] is False and "fid_every" in vals and "q_state" in vals
    assert any("learning rate G" in r for r in knobs.inactive(cfg))
    vals["train_g"] = True
    assert knobs.build_config(cfg.to_dict(), vals).g_every == 1
    origin = dict(zip(knobs.KEYS, knobs.values_of(cfg)))
    assert knobs.edits({**origin, "lr_d": 0.005}, origin) == {"lr_d": 0.005}


def test_build_config_coerces_and_validates():
    from dqngan.config import ConfigError

    vals = dict(zip(knobs.KEYS, knobs.values_of(knobs.preset_config("tiny"))))
    vals.update(n_critic=3.0, loss="wgan-gp", seed=7.0)
    cfg = knobs.build_config(knobs.preset_config("tiny").to_dict(), vals)
    assert cfg.n_critic == 3 and isinstance(cfg.n_critic, int) and cfg.d_norm == "none" and cfg.seed == 7
    with pytest.raises(ConfigError):
        knobs.build_config(None, {"lr_g": 5.0})
    with pytest.raises(ConfigError):
        knobs.build_config(None, {"n_critic": 2.5})
    with pytest.raises(ConfigError):
        knobs.build_config(None, {"eps_start": 0.1, "eps_end": 0.5})


def test_sketch_to_digit_centres_the_stroke_and_rejects_empty():
    canvas = np.full((280, 280), 255, dtype=np.uint8)
    assert images.sketch_to_digit({"composite": canvas}) is None
    canvas[20:100, 20:40] = 0  # a short bar in the top-left corner
    d = images.sketch_to_digit({"composite": canvas, "layers": [], "background": None})
    assert d.shape == (28, 28) and d.dtype == np.uint8
    ys, xs = np.nonzero(d > 128)
    assert abs(ys.mean() - 13.5) < 2 and abs(xs.mean() - 13.5) < 2  # centred like MNIST
    rgba = np.zeros((50, 50, 4), dtype=np.uint8)
    rgba[10:40, 20:25, 3] = 255  # black ink, alpha = stroke
    assert images.sketch_to_digit({"composite": rgba}).max() > 200


def test_timeline_gif(tmp_path):
    raw = np.random.default_rng(0).integers(0, 255, (64, 28, 28), dtype=np.uint8)
    p = images.timeline_gif([(1, raw, raw), (10, raw, 255 - raw)], tmp_path / "t.gif")
    from PIL import Image

    with Image.open(p) as im:
        assert im.n_frames == 2
    with pytest.raises(ValueError):
        images.timeline_gif([], tmp_path / "empty.gif")


def test_registry_caps_training_evicts_idle_and_drops(mnist, tiny_cfg):
    from dqngan.runner import Runner
    from dqngan.trainer import Trainer

    def make():
        return Run(Runner(Trainer(tiny_cfg, "cpu", data=mnist)), label="test")

    reg = Registry(make, max_running=1, max_runs=2, refresh_every=0.05).start()
    try:
        a = reg.own("a", make)
        b = reg.own("b", make)
        reg.train(a)
        with pytest.raises(Busy, match="busy"):
            reg.train(b)  # the one slot is taken
        assert reg.watch("b") is a and reg.view("b") is a  # b watches a's run ...
        reg.unwatch("b")
        assert reg.view("b") is b  # ... and goes back to its own
        reg.own("c", make)  # a third run: b (idle, least recently seen) is evicted, a keeps training
        assert reg.session("b").run is None and "released" in reg.session("b").notice
        wait_for(lambda: a.snap.get("step", 0) > 0, what="the refresher to copy a's snapshot")
        reg.drop("a")
        wait_for(lambda: a.runner.status == "stopped", what="the dropped run to stop")
        assert a not in reg.runs()
    finally:
        reg.close()


# ---------------------------------------------------------------------------------------------------- the app
def test_train_poll_pause_step(app, client):
    demo, _ = app
    status, charts_key, grid_key, lock_key, readouts = poll(client)
    assert "shared model" in status and "idle" in status and lock_key.startswith("free")
    assert "D(x) real" in readouts
    status = client.predict(api_name="/train")
    assert "running" in status and "your run" in status
    run = own_run(demo, client)
    wait_for(lambda: run.snap.get("step", 0) >= 12 and run.snap.get("grids"), what="a few training steps")
    status, ck, gk, lk, readouts = poll(client)
    assert "running" in status and ck != charts_key and gk != grid_key and lk.startswith("locked")
    # what the browser fetches when the keys moved: the charts (and their text readouts), the grid, the knob locks
    charts_out = client.predict(0.6, "whole run", api_name="/charts")
    loss, reward, q, qheat, eps, fid = (plot_data(o) for o in charts_out[:6])
    assert charts_out[6].startswith("latest: D loss")
    assert {t["name"] for t in loss["data"]} >= {"D loss", "G loss"}
    assert len(loss["data"][-1]["x"]) >= 2 and any(t["name"].startswith("D(x)") for t in reward["data"])
    assert q["data"] and q["data"][0]["type"] == "bar" and qheat["data"][0]["type"] == "heatmap"
    assert eps["data"][0]["name"].startswith("ε")
    grid, slider, caption = client.predict(True, api_name="/grid")
    assert grid and slider["maximum"] >= 10 and "newest" in caption
    locks = client.predict("locked", api_name="/locks")
    assert locks[0] == {"interactive": False, "__type__": "update"} and locks[-2]["visible"] is True
    total = sum(len(json.dumps(o)) for o in (*charts_out, grid, slider, status))
    assert total < 150_000, f"payload {total} bytes"
    gif = client.predict(api_name="/gif")  # the whole timeline as an animated GIF
    assert str(gif.get("path") if isinstance(gif, dict) else gif).endswith(".gif")

    status = client.predict(api_name="/pause")
    assert "paused" in status
    step = run.runner.step_count
    time.sleep(0.5)
    assert run.runner.step_count == step  # really paused
    first, second = poll(client), poll(client)
    assert first[1:] == second[1:] and second[3].startswith("free")  # nothing changed: nothing re-renders

    status = client.predict(3, api_name="/step")
    assert "stepping 3" in status
    wait_for(lambda: run.runner.status == "paused" and run.runner.step_count == step + 3, what="3 steps")
    # the status reaches the page within a refresh interval (the registry copies snapshots every 0.25 s)
    def stepped():
        out = poll(client)
        return out if f"step {step + 3}" in out[0] else None

    after = wait_for(stepped, what="the status")
    assert after[1] != second[1]


def test_live_knobs_and_bad_inputs_keep_training_alive(app, client):
    demo, _ = app
    client.predict(2, api_name="/step")
    run = own_run(demo, client)
    wait_for(lambda: run.runner.status == "paused", what="the steps")
    # a live knob (lr_g is the 5th knob) applied to the existing run without a reset
    vals = knobs.values_of(run.runner.cfg)
    vals[knobs.KEYS.index("lr_g")] = 1e-3
    client.predict(*vals, api_name="/train")
    wait_for(lambda: run.runner.cfg.lr_g == 1e-3, what="the live lr_g")
    assert own_run(demo, client) is run  # same run, not a new one
    client.predict(api_name="/pause")
    step = run.runner.step_count
    # bad inputs: readable messages, nothing crashes, the run and its settings survive
    with pytest.raises(AppError, match="minimum"):
        client.predict(0, api_name="/step")  # the field's own bound: a readable error, nothing else happens
    vals[knobs.KEYS.index("eps_end")] = 0.99
    vals[knobs.KEYS.index("eps_start")] = 0.1
    assert "eps_end must be <= eps_start" in client.predict(*vals, api_name="/train")
    with pytest.raises(AppError, match="maximum"):
        client.predict(*knobs.values_of(run.runner.cfg)[:4], 5.0, api_name="/train")  # lr_g > 1 (field max)
    assert all(is_skip(o) for o in client.predict("{not json", api_name="/restore_config"))
    assert all(is_skip(o) for o in client.predict('{"width": -1}', api_name="/restore_config"))
    assert own_run(demo, client) is run and run.runner.step_count == step and run.runner.cfg.lr_g == 1e-3
    assert run.runner.status == "paused" and run.runner.error is None
    # Reset: a fresh model from the preset plus the knobs changed since (lr_g here), not started; the knobs show it
    out = client.predict(*knobs.values_of(run.runner.cfg), api_name="/reset")
    status, shown = out[0], dict(zip(knobs.KEYS, out[1:]))
    assert "reset" in status and own_run(demo, client) is not run and "step 0 " in status
    assert "preset tiny with lr_g=0.001" in status and shown["lr_g"] == 1e-3
    assert own_run(demo, client).runner.cfg.lr_g == 1e-3 and own_run(demo, client).runner.cfg.batch_size == 16


def test_cap_busy_watch_and_unload_cleanup(app):
    demo, url = app
    a = Client(url, verbose=False, download_files=False)
    b = Client(url, verbose=False, download_files=False)
    try:
        a.predict(api_name="/train")
        run_a = own_run(demo, a)
        wait_for(lambda: run_a.running, what="a to train")
        status = b.predict(api_name="/train")
        assert "busy" in status and "Watch" in status
        assert own_run(demo, b) is None  # the run made for the refused click was given back
        assert "watching" in b.predict(api_name="/watch")
        assert "watching another visitor's run" in poll(b)[0]
        assert "cannot pause" in b.predict(api_name="/pause") and run_a.running
    finally:
        a.close()
    # closing the tab (the client's heartbeat) runs demo.unload: a's training stops well within 30 s
    wait_for(lambda: run_a.runner.status == "stopped", timeout=25, what="unload to stop the closed session's run")
    assert a.session_hash not in demo.ctx.registry._sessions
    b.close()


def test_explore_agent_step_rollout_map_interpolate(app, client, monkeypatch):
    from dqngan.ui import explore_tab

    monkeypatch.setattr(explore_tab, "ROLLOUT_DELAY", 0.0)  # the animation's pause (~2.5 s here); frames still stream
    out = client.predict(3, "none", api_name="/explore_seed")
    img, q, info = out[0], plot_data(out[1]), out[2]
    assert img and "Φ =" in info and q["data"][0]["type"] == "bar"
    labels = q["data"][0]["x"]
    assert labels[0] == "stop" and len(labels) == 2 * 8 + 1
    sliders = [0.0] * N_SLIDERS
    out = client.predict(3, "none", *sliders, api_name="/agent_step")
    moved = [u.get("value") for u in out[5:5 + N_SLIDERS] if isinstance(u, dict)]  # state is hidden
    chosen = out[2]
    assert "t = 1/" in chosen and ("stop" in chosen or "moved" in chosen)
    if "moved" in chosen:  # one slider moved by exactly delta = 0.5
        assert sorted(abs(v) for v in moved if v)[-1:] == [0.5]
    # rollout: an animation, one yield per step, ends with stop or the horizon
    job = client.submit(3, "none", *sliders, api_name="/agent_rollout")
    job.result(timeout=60)
    frames = job.outputs()
    assert 1 <= len(frames) <= 8 and "Φ" in frames[-1][2]
    traj = plot_data(frames[-1][4])
    assert len(traj["data"][0]["y"]) >= 2  # potential per step
    # the map and interpolation
    m = plot_data(client.predict("d1", "d2", 2, 11, True, 3, "none", *sliders, api_name="/latent_map"))
    assert m["data"][0]["type"] == "heatmap" and len(m["data"][0]["z"]) == 11 and m["layout"]["images"]
    assert is_skip(client.predict("d1", "d1", 2, 11, False, 3, "none", *sliders, api_name="/latent_map"))
    assert client.predict(0, 1, 5, "3", api_name="/interpolate")
    # a slider move renders at once
    out = client.predict(3, "none", *([2.0] + [0.0] * 15), api_name="/explore_render")
    assert "Φ =" in out[2]


def test_draw_projects_and_refines(app, client, tmp_path):
    from PIL import Image

    canvas = np.full((280, 280), 255, dtype=np.uint8)
    canvas[40:240, 130:150] = 0  # a "1"
    p = tmp_path / "one.png"
    Image.fromarray(canvas).save(p)
    value = {"background": None, "layers": [], "composite": handle_file(str(p))}
    job = client.submit(value, "none", 20, api_name="/draw_refine")
    job.result(timeout=60)
    last = job.outputs()[-1]
    assert last[0] and "projected" in last[1] and plot_data(last[2])["data"]
    empty = tmp_path / "empty.png"
    Image.fromarray(np.full((280, 280), 255, dtype=np.uint8)).save(empty)
    job = client.submit({"background": None, "layers": [], "composite": handle_file(str(empty))}, "none", 20,
                        api_name="/draw_refine")
    job.result(timeout=30)
    assert all(is_skip(o) for o in job.outputs()[-1])  # "draw a digit first" warning, nothing replaced


def test_models_save_list_load(app, client, ckpt, monkeypatch):
    demo, _ = app
    client.predict(2, api_name="/step")
    wait_for(lambda: own_run(demo, client) and own_run(demo, client).runner.status == "paused", what="steps")
    msg, listing = client.predict("my-run", api_name="/save_checkpoint")
    assert "saved step 2" in msg
    assert any(c[0].endswith("my-run") for c in listing["choices"])
    assert "⚠️" in client.predict("../escape", api_name="/save_checkpoint")[0]
    try:  # only listed checkpoints open (Gradio's choice check or ours answers first)
        assert "⚠️" in client.predict("/etc/passwd", api_name="/load_checkpoint")[0]
    except AppError as e:
        assert "choices" in str(e)
    shown = next(c[0] for c in listing["choices"] if c[0].endswith("my-run"))
    msg = client.predict(shown, api_name="/load_checkpoint")[0]
    assert "loaded" in msg and "step 2" in msg
    assert "loaded checkpoint" in poll(client)[0]


def test_lessons_start_their_own_runs(app, client):
    """Each lesson puts the session on the run it needs (real shipped checkpoints), and the knobs say so."""
    from dqngan.ui import lessons

    demo, _ = app
    out = client.predict("1. What a GAN learns", api_name="/lesson")
    shown = dict(zip(knobs.KEYS, out[1:]))
    run = own_run(demo, client)
    assert "fresh, untrained" in out[0] and shown["train_g"] is True and shown["agent_every"] == 0
    assert run.runner.step_count == 0 and run.runner.cfg.g_every == 1 and run.runner.cfg.grid_every == 25
    out = client.predict("2. What the Q-values mean", api_name="/lesson")
    shown = dict(zip(knobs.KEYS, out[1:]))
    run2 = own_run(demo, client)
    assert "Q(s, a)" in out[0] and shown["eps_decay"] == 1000 and shown["train_g"] is False
    t = run2.runner
    assert run2 is not run and t.step_count > 30_000 and t.agent_steps == 0 and t.cfg.q_state == "grad"
    assert t.history.to_dict() == {}  # the charts' x-axis starts with the lesson
    out = client.predict("3. Steering towards a digit", api_name="/lesson")
    assert own_run(demo, client).runner.cfg.beta_goal > 0
    assert "7" in out and "lesson 3 ready" in " ".join(str(o) for o in out)
    # a lesson's Reset starts that lesson again (not the app's preset)
    client.predict("1. What a GAN learns", api_name="/lesson")
    before = own_run(demo, client)
    status = client.predict(*knobs.values_of(before.runner.cfg), api_name="/reset")[0]
    assert "lesson 1 starts again" in status and own_run(demo, client) is not before
    assert own_run(demo, client).runner.cfg.agent_every == 0
    with pytest.raises(lessons.UserError):
        lessons.lesson_named("9")


def test_a_repeated_lesson_pick_keeps_the_run_it_set_up(app, client):
    """The browser can send one dropdown pick twice (Gradio fires `input` on the click and on blur), the second
    after Train on a busy machine: it must not swap the training run for an idle copy. Picking the lesson again once
    its run has trained and paused starts the lesson over."""
    demo, _ = app
    lesson = "1. What a GAN learns"
    client.predict(lesson, api_name="/lesson")
    run = own_run(demo, client)
    client.predict(lesson, api_name="/lesson")  # the repeat before Train: the same untouched run
    assert own_run(demo, client) is run
    assert "running" in client.predict(api_name="/train")
    out = client.predict(lesson, api_name="/lesson")  # the repeat after Train
    assert own_run(demo, client) is run and run.running
    assert "already training" in " ".join(str(o) for o in out)
    wait_for(lambda: run.runner.step_count > 0, what="a training step")
    client.predict(api_name="/pause")
    client.predict(lesson, api_name="/lesson")  # a pick after training: the lesson starts over
    again = own_run(demo, client)
    assert again is not run and again.runner.step_count == 0 and again.lesson == lesson


def test_config_json_restore_query_and_share_link(app, client):
    from dqngan.ui import lessons
    from dqngan.ui.knobs import recipe_for

    client.predict("tiny", api_name="/load_preset")
    vals = knobs.values_of(knobs.preset_config("tiny"))
    cfg = json.loads(client.predict(*vals, api_name="/config_json"))
    assert cfg["batch_size"] == 16  # the preset's hidden keys ride along
    restored = client.predict(json.dumps({"lr_g": 3e-4, "seed": 9}), api_name="/restore_config")
    # the session's full config is hidden state; the knobs come back
    assert restored[knobs.KEYS.index("lr_g")] == 3e-4 and restored[knobs.KEYS.index("seed")] == 9
    cfg2, lesson = lessons.from_query({"preset": "tiny", "seed": "4", "lesson": "1"}, knobs.preset_config("cpu"))
    assert cfg2.seed == 4 and cfg2.batch_size == 16 and cfg2.agent_every == 0 and lesson.startswith("1.")
    with pytest.raises(lessons.UserError):
        lessons.from_query({"preset": "nope"}, cfg2)
    with pytest.raises(lessons.UserError, match="unknown setting"):
        lessons.from_query({"lr_x": "1"}, cfg2)
    # the share link names the preset, the seed and only the knobs changed since; opening it rebuilds the same config
    tiny = knobs.preset_config("tiny")
    changed = dict(zip(knobs.KEYS, knobs.values_of(tiny)), lr_d=0.005, train_g=False)
    query = lessons.share_query(recipe_for(tiny, tiny, "tiny"), tuple(changed[k] for k in knobs.KEYS))
    assert query.startswith("?preset=tiny&seed=0&") and "lr_d=0.005" in query and "train_g=false" in query
    assert "lr_g" not in query
    from urllib.parse import parse_qsl
    again, _ = lessons.from_query(dict(parse_qsl(query[1:])), knobs.preset_config("cpu"))
    assert again == tiny.replace(lr_d=0.005, g_every=0)
    client.predict("tiny", api_name="/load_preset")
    link, students = client.predict(False, [], *knobs.values_of(tiny.replace(lr_d=0.005)), api_name="/share_link")
    assert link.startswith("http") and link.endswith("/?preset=tiny&seed=0&lr_d=0.005")
    assert students.endswith("/?watch=1")
    # teacher mode: both links carry the hidden parts and the layout
    link, students = client.predict(True, ["models", "knobs"], *knobs.values_of(tiny), api_name="/share_link")
    assert link.endswith("&layout=present&hide=knobs,models") and students.endswith("?watch=1&layout=present"
                                                                                   "&hide=knobs,models")
    assert lessons.hide_param(["nonsense", "draw"]) == "draw" and lessons.hide_param([]) is None


def test_opens_on_a_shipped_checkpoint(ckpt, tmp_path):
    from dqngan.ui import build_demo

    demo = build_demo(checkpoint=ckpt, preset="tiny", device="cpu", save_root=tmp_path)
    try:
        base = demo.ctx.registry.base
        assert base.source == str(ckpt) and base.runner.step_count == 12 and "pretrained" in base.label
        assert any(str(ckpt).endswith(c) or c.endswith("tiny-run") for c in demo.ctx.local_checkpoints())
    finally:
        demo.ctx.registry.close()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{}")
    demo = build_demo(checkpoint=broken, preset="tiny", device="cpu", save_root=tmp_path)
    try:  # an unreadable checkpoint: the app still opens, on a fresh model
        assert demo.ctx.registry.base.source is None
    finally:
        demo.ctx.registry.close()


# ---------------------------------------------------------------------------------------------------- Hub buttons
@pytest.fixture
def fake_hub_env(monkeypatch, tmp_path):
    """The fake Hub from tests/fake_hub.py, with huggingface_hub pointed at it (as in test_hub.py)."""
    fake_hub = pytest.importorskip("fake_hub")
    hub = fake_hub.FakeHub().start()
    ep, home = hub.url, tmp_path / "hf_home"
    fake_hub.point_client_at(monkeypatch, ep, home)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.stop()
    import huggingface_hub

    huggingface_hub.close_session()


def test_hub_buttons_push_pull_login(app, client, fake_hub_env):
    demo, _ = app
    if not hasattr(__import__("dqngan.hub").hub, "push_checkpoint"):
        pytest.skip("dqngan.hub is not there yet")
    assert "alice" in client.predict("hf_good", api_name="/hub_whoami")
    assert "⚠️" in client.predict("hf_bad", api_name="/hub_whoami")
    client.predict(2, api_name="/step")
    wait_for(lambda: own_run(demo, client) and own_run(demo, client).runner.status == "paused", what="steps")
    msg = client.predict("alice/dqngan-app", "", False, "hf_good", api_name="/hub_push")
    assert "pushed" in msg and "hf_good" not in msg
    msg = client.predict("not a repo id", "", False, "hf_good", api_name="/hub_push")
    assert "⚠️" in msg and "invalid repo id" in msg
    msg = client.predict("alice/dqngan-app", "", "hf_good", api_name="/hub_pull")[0]
    assert "loaded" in msg and "alice/dqngan-app" in msg
    assert "alice/dqngan-app" in poll(client)[0]
    for m in (msg, poll(client)[0]):
        assert "hf_good" not in m  # the token never shows up in what the app sends back
    # A pull with a typed token may open a private repo: nothing of it stays in the shared Hub cache, where another
    # visitor's offline pull would find it; the run itself is loaded and keeps working.
    from huggingface_hub import constants

    assert not list(Path(constants.HF_HUB_CACHE).glob("models--alice--dqngan-app*"))
    client.predict(1, api_name="/step")
    wait_for(lambda: own_run(demo, client).runner.status == "paused", what="a step of the pulled run")


def test_grid_of_a_loaded_checkpoint_uses_its_own_fixed_noise(ckpt):
    """The grid shown before a loaded run trains is drawn from the run's saved fixed noise, so the grids recorded once
    it trains continue the same 64 digits (it used to swap to another noise set at the first recorded grid)."""
    import torch
    from PIL import Image

    from dqngan.checkpoint import load_checkpoint
    from dqngan.runner import Runner
    from dqngan.ui.train_tab import GRID_SCALE, grid_at

    trainer = load_checkpoint(ckpt, device="cpu")
    run = Run(Runner(trainer), label="loaded")
    run.refresh()
    _, path = grid_at(run)
    shown = np.asarray(Image.open(path))
    assert trainer.agent_steps > 0  # so the grid is raw | refined

    def pair(z):
        return images.upscale(images.grid_pair(trainer.generate(z).numpy(), trainer.generate(z, refine=True).numpy()),
                              GRID_SCALE)

    assert np.array_equal(shown, pair(trainer.fixed_z))
    seed0 = torch.randn(64, trainer.cfg.z_dim, generator=torch.Generator().manual_seed(0))  # the old, wrong noise
    assert not np.array_equal(shown, pair(seed0))
