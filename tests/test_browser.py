"""The app in a real browser (headless Debian chromium driven by Playwright): Train makes the charts and the sample
grid update, Pause stops them, an explorer slider redraws the digit and the Q bars, the agent steps, the sketchpad
draws. Asserts on the DOM (Plotly traces and their values, image sources), not just that the page loaded.

Needs the `chromium` package (.ci/install-browser.sh) and the playwright Python package (never `playwright
install`: the system chromium is used). Screenshots go to a temp folder, and to assets/screenshots/ when
DQNGAN_SAVE_SCREENSHOTS=1.
"""

import os
import time
from pathlib import Path

import pytest
from helpers import chromium_or_skip, launched_app
from lesson_pages import TIMEOUT, wait_js

chromium_or_skip()
pytest.importorskip("gradio")

ROOT = Path(__file__).resolve().parent.parent

PLOT_X_LEN = """(id) => { const d = document.querySelector(`#${id} .js-plotly-plot`);
  return d && d.data && d.data.length ? Math.max(...d.data.map(t => (t.x || []).length)) : 0 }"""
# the newest step drawn: the charts thin long histories to a fixed number of points, so their length stops growing
PLOT_LAST_X = """(id) => { const d = document.querySelector(`#${id} .js-plotly-plot`);
  return d && d.data && d.data.length ? Math.max(...d.data.map(t => (t.x && t.x.length ? t.x[t.x.length - 1] : -1)))
  : -1 }"""
PLOT_LAST_Y = """(id) => { const d = document.querySelector(`#${id} .js-plotly-plot`);
  if (!d || !d.data || !d.data.length) return null; const t = d.data[d.data.length - 1]; return t.y[t.y.length - 1] }"""
IMG_SRC = "(id) => { const i = document.querySelector(`#${id} img`); return i ? i.getAttribute('src') : null }"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("browser-app")) as (_, url):
        yield url


@pytest.fixture(scope="module")
def page(app_url, browser):
    """One tab for the module's tests, in order (train, explore, draw), on a shared link: preset, seed and a knob."""
    pg = browser.new_page(viewport={"width": 1360, "height": 1100})
    pg.set_default_timeout(TIMEOUT)
    pg.goto(app_url + "?preset=tiny&seed=5&agent_every=1")
    pg.wait_for_selector("#train-btn")
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    dirs = [tmp_path_factory.mktemp("shots")]
    if os.environ.get("DQNGAN_SAVE_SCREENSHOTS"):
        dirs.append(ROOT / "assets" / "screenshots")
        dirs[-1].mkdir(parents=True, exist_ok=True)

    def save(pg, name, **kw):
        for d in dirs:
            pg.screenshot(path=str(d / name), **kw)
    return save


def test_train_updates_charts_and_grid_then_pause(page, shots):
    pg = page
    wait_js(pg, "() => document.querySelector('#status').innerText.includes('shared model')")
    wait_js(pg, "() => document.querySelector('#knob-seed input').value === '5'")  # from the query string
    assert pg.input_value("#knob-agent_every input[type=number]") == "1"
    pg.click("#train-btn")
    wait_js(pg, "() => document.querySelector('#status').innerText.includes('running')")
    # the poll delivers charts with real traces, then they grow as training goes on
    wait_js(pg, f"() => ({PLOT_X_LEN})('loss-plot') >= 3")
    first_x = pg.evaluate(PLOT_LAST_X, "loss-plot")
    wait_js(pg, f"() => ({PLOT_LAST_X})('loss-plot') > {first_x}")
    names = pg.evaluate("() => document.querySelector('#loss-plot .js-plotly-plot').data.map(t => t.name)")
    assert "D loss" in names and "G loss" in names
    assert pg.evaluate(PLOT_LAST_Y, "reward-plot") is not None
    wait_js(pg, "() => { const d = document.querySelector('#q-plot .js-plotly-plot');"
                " return d && d.data.length && d.data[0].type === 'bar' && d.data[0].y.length === 17 }")
    wait_js(pg, f"() => ({IMG_SRC})('sample-grid')")
    grid_src = pg.evaluate(IMG_SRC, "sample-grid")
    wait_js(pg, f"() => ({IMG_SRC})('sample-grid') && ({IMG_SRC})('sample-grid') !== {grid_src!r}")
    # non-live knobs are locked while training, with the reason as a tooltip
    assert pg.is_disabled("#knob-width input[type=range]")
    assert "Locked while training" in (pg.get_attribute("#knob-width", "title") or "")
    assert pg.is_visible("#lock-note")
    shots(pg, "train.png")

    pg.click("#pause-btn")
    wait_js(pg, "() => document.querySelector('#status').innerText.includes('paused')")
    # the charts catch up with the last steps (on a busy machine that takes a few polls), then stay still
    wait_js(pg, f"""() => {{ const n = ({PLOT_LAST_X})('loss-plot'), w = window.__still || (window.__still = {{n: -1}});
      if (n !== w.n) {{ w.n = n; w.t = Date.now(); return false }} return Date.now() - w.t > 3000 }}""")
    n = pg.evaluate(PLOT_LAST_X, "loss-plot")
    step = pg.inner_text("#status")
    time.sleep(2.5)  # two more polls: nothing changes while paused
    assert pg.evaluate(PLOT_LAST_X, "loss-plot") == n and pg.inner_text("#status").split("·")[1] == step.split("·")[1]
    assert not pg.is_disabled("#knob-width input[type=range]")


def test_explore_slider_and_agent_step(page, shots):
    pg = page
    pg.click("#tab-explore-button") if pg.query_selector("#tab-explore-button") else pg.get_by_role(
        "tab", name="Explore").click()
    # opening the tab redraws from the seed on this session's own (paused) run: wait for that draw, not the
    # shared model's from page load, so the slider move below is the last thing drawn
    step = pg.inner_text("#status").split("·")[1].strip()  # "step 96"
    wait_js(pg, f"() => document.querySelector('#explore-info').innerText.includes('model at training {step}')")
    wait_js(pg, f"() => ({IMG_SRC})('explore-image')")
    wait_js(pg, "() => { const d = document.querySelector('#explore-q-plot .js-plotly-plot');"
                " return d && d.data.length && d.data[0].y.length === 17 }")
    src = pg.evaluate(IMG_SRC, "explore-image")
    q_before = pg.evaluate("() => document.querySelector('#explore-q-plot .js-plotly-plot').data[0].y")
    # move the first direction's slider like a user (keyboard on the range input)
    pg.focus("#explore-d1 input[type=range]")
    pg.keyboard.press("End")
    assert pg.input_value("#explore-d1 input[type=range]") == "4"
    wait_js(pg, "(before) => JSON.stringify(document.querySelector('#explore-q-plot .js-plotly-plot').data[0].y)"
                " !== JSON.stringify(before)", arg=q_before)
    # the digit is redrawn; only a G that still draws one flat grey for every z (a few dozen steps in) gives the
    # same pixels, hence the same (content-addressed) image URL, and the info says so
    wait_js(pg, f"() => ({IMG_SRC})('explore-image') !== {src!r}"
                " || document.querySelector('#explore-info').innerText.includes('almost flat grey')")
    assert "Φ =" in pg.inner_text("#explore-info")
    pg.click("#agent-step-btn")
    wait_js(pg, "() => document.querySelector('#explore-info').innerText.includes('t = 1/')")
    assert "stop" in pg.inner_text("#explore-info") or "moved" in pg.inner_text("#explore-info")
    shots(pg, "explore.png")
    # after more training, reopening the tab redraws where the user was with the model as it is now
    moved = pg.input_value("#explore-d1 input[type=range]")
    pg.get_by_role("tab", name="Train").click()
    pg.click("#train-btn")
    wait_js(pg, f"() => !document.querySelector('#status').innerText.includes({step!r} + ' ')"
                " && document.querySelector('#status').innerText.includes('running')")
    pg.click("#pause-btn")
    wait_js(pg, "() => document.querySelector('#status').innerText.includes('paused')")
    now = pg.inner_text("#status").split("·")[1].strip()
    pg.get_by_role("tab", name="Explore").click()
    wait_js(pg, f"() => document.querySelector('#explore-info').innerText.includes('model at training {now}')")
    assert pg.input_value("#explore-d1 input[type=range]") == moved


def test_draw_tab_sketch_projects(page, shots):
    pg = page
    if not pg.evaluate("() => !!document.createElement('canvas').getContext('webgl2')"):
        pytest.skip("no WebGL2 in this headless chromium (the sketchpad needs it)")
    pg.get_by_role("tab", name="Draw").click()
    canvas = pg.locator("#draw-pad canvas").first
    canvas.wait_for()
    pg.locator("#draw-pad").get_by_label("Brush").first.click()  # as in Gradio's own e2e tests
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    pg.mouse.move(x, y)
    pg.mouse.down()
    for i in range(1, 6):  # the same stroke (60% of the height) as 20 small moves, in 5 round trips
        pg.mouse.move(x, y + i * box["height"] * 0.12)
    pg.mouse.up()
    pg.click("#draw-btn")
    wait_js(pg, "() => document.querySelector('#draw-msg').innerText.includes('projected')")
    assert pg.evaluate(IMG_SRC, "draw-frames")
    wait_js(pg, "() => { const d = document.querySelector('#draw-phi-plot .js-plotly-plot');"
                " return d && d.data.length && d.data[0].y.length >= 1 }")
    shots(pg, "draw.png")
