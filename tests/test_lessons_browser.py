"""The teacher's path in a real browser (headless Debian chromium + Playwright), on the shipped checkpoints: Reset
on the shipped agent-phase model trains G, each lesson opens on the run it needs and something visibly changes,
clicks answer while a run trains, and a share link reproduces the set-up.

Asserts on what the page shows (status text, Plotly traces, image sources, knob values), not on server internals.
"""

import re
import statistics
import time
from pathlib import Path

import pytest
from helpers import CHROMIUM_ARGS as ARGS
from helpers import chromium_or_skip, launched_app

CHROMIUM, sync_api = chromium_or_skip()
pytest.importorskip("gradio")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "mnist"
if not (SHIPPED / "manifest.json").is_file():
    pytest.skip("the shipped checkpoint is missing", allow_module_level=True)
TIMEOUT = 60_000
STATUS = "() => document.querySelector('#status').innerText"
TRACES = "(id) => { const d = document.querySelector(`#${id} .js-plotly-plot`); return d && d.data ? d.data : [] }"
IMG_SRC = "(id) => { const i = document.querySelector(`#${id} img`); return i ? i.getAttribute('src') : null }"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # the shipped agent-phase checkpoint (G frozen) is what a teacher first sees; tiny is the app's Reset preset
    with launched_app(tmp_path_factory.mktemp("lessons-app"), checkpoint=SHIPPED) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def app_url(app):
    return app[1]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for every lesson test: its HTTP cache keeps the app's big JS chunks (Plotly alone is 4.6 MB)
    after the first page load, as for a teacher's browser; every test still opens a tab (a session) of its own."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def new_tab(context):
    """A tab in `context`; given the browser, a tab in a fresh context of its own. Tabs that are open together live in
    separate contexts: Chromium gives a context 6 connections per host, and each app tab holds long-lived streams
    (with three tabs in one, the share-link test took 71-106 s instead of 37-39 s, most likely waiting for one)."""
    pg = context.new_page(viewport={"width": 1280, "height": 900}) if hasattr(context, "new_context") \
        else context.new_page()
    pg.set_default_timeout(TIMEOUT)
    return pg


@pytest.fixture
def page(context):
    pg = new_tab(context)
    yield pg
    pg.close()  # the tab closes: the app stops its run (unload)


def wait_js(pg, expr, arg=None, timeout=TIMEOUT):
    pg.wait_for_function(expr, arg=arg, timeout=timeout, polling=100)


def status_has(pg, text, timeout=TIMEOUT):
    wait_js(pg, f"() => ({STATUS})().includes({text!r})", timeout=timeout)


def open_page(pg, url):
    pg.goto(url)
    pg.wait_for_selector("#train-btn")
    wait_js(pg, f"() => ({STATUS})().includes('step')")


# Every caption the slow-motion narration shows, in order, with the diagram nodes lit when it appeared (a
# MutationObserver: it sees each sub-step however busy the machine is).
RECORD_NARRATION = """() => {
  window.__captions = [];
  new MutationObserver(() => {
    const c = document.querySelector('#narration-caption'), text = c ? c.textContent : '';
    const last = window.__captions[window.__captions.length - 1];
    if (text && (!last || last.text !== text)) window.__captions.push({text, active:
      [...document.querySelectorAll('#diagram .node.active')].map(n => n.id).join(',')});
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def grid_changes(pg, n, timeout):
    """Wait until the sample grid's image has changed n times (each change is a newer recorded grid)."""
    seen = [pg.evaluate(IMG_SRC, "sample-grid")]
    end = time.monotonic() + timeout
    while len(set(seen)) <= n:
        assert time.monotonic() < end, f"the sample grid changed {len(set(seen)) - 1} time(s), wanted {n}"
        time.sleep(0.3)
        seen.append(pg.evaluate(IMG_SRC, "sample-grid"))


def test_reset_on_the_shipped_model_trains_g(page, app_url):
    pg = page
    open_page(pg, app_url)
    assert "pretrained" in pg.evaluate(STATUS)
    # the shipped model froze G: the knob says so, and a note says what has no effect
    assert not pg.is_checked("#knob-train_g input[type=checkbox]")
    wait_js(pg, "() => (document.querySelector('#inactive-note') || {innerText: ''}).innerText"
                ".includes('learning rate G')")
    pg.click("#reset-btn")
    pg.wait_for_selector("#reset-confirm", state="visible")
    assert "preset" in pg.inner_text("#reset-confirm-text")
    pg.click("#reset-cancel")  # Reset asks first; Cancel keeps the run
    pg.wait_for_selector("#reset-confirm", state="hidden")
    assert "pretrained" in pg.evaluate(STATUS)
    pg.click("#reset-btn")
    pg.click("#reset-yes")
    status_has(pg, "from preset tiny")
    wait_js(pg, "() => document.querySelector('#knob-train_g input[type=checkbox]').checked")
    pg.click("#train-btn")
    status_has(pg, "running")
    wait_js(pg, f"() => ({TRACES})('loss-plot').some(t => t.name === 'G loss' && t.x.length >= 2)")
    grid_changes(pg, 2, 30)
    pg.click("#pause-btn")
    status_has(pg, "paused")


def test_lesson_1_shows_a_fresh_gan_learning(page, app_url):
    pg = page
    open_page(pg, app_url + "?lesson=1")
    status_has(pg, "lesson 1 ready")
    assert "fresh, untrained" in pg.inner_text("#lesson-text")
    assert pg.is_checked("#knob-train_g input[type=checkbox]")
    pg.click("#train-btn")
    status_has(pg, "running")
    grid_changes(pg, 3, 45)  # a new grid every 25 steps: several within the lesson's first minute
    wait_js(pg, f"() => ({TRACES})('reward-plot').filter(t => t.showlegend !== false).map(t => t.line.dash)"
                ".join() === 'solid,dash'")  # D(x) and D(G(z)): not told apart by colour alone
    assert pg.inner_text("#readout-d_loss .readout-value") != "–"
    # clicks answer while training: Pause / Train shown in the browser, and the charts redraw only every few seconds
    pg.evaluate("""() => { window.__mounts = 0; new MutationObserver(m => { for (const r of m) for (const n of
        r.addedNodes) if (n.classList && n.classList.contains('js-plotly-plot')) window.__mounts++; })
        .observe(document.querySelector('#loss-plot'), {childList: true, subtree: true}); }""")
    lat = []
    for _ in range(4):
        time.sleep(2)
        for btn, word in (("#pause-btn", "paused"), ("#train-btn", "running")):
            t0 = time.monotonic()
            pg.click(btn)
            status_has(pg, word, timeout=15_000)
            lat.append(time.monotonic() - t0)
    mounts = pg.evaluate("() => window.__mounts")
    print(f"click to status: p50 {statistics.median(lat):.2f} s, max {max(lat):.2f} s; loss chart mounts {mounts}")
    # generous (CI shares 2 cores with training and the other test worker; bench/click_latency.py measures it): the
    # bug this guards showed every click 10-14 s late; one click of eight may hit a busy moment (9.9 s seen once)
    assert statistics.median(lat) < 4.0 and sorted(lat)[-2] < 8.0, lat
    assert mounts <= 12, mounts  # ~20 s of a 1-second poll: at most every 3 s while running, plus the pauses


def test_lesson_2_fresh_agent_on_the_trained_gan(page, app_url):
    pg = page
    open_page(pg, app_url)
    pg.click("#lesson input")
    pg.get_by_role("option", name="2. What the Q-values mean").click()
    status_has(pg, "lesson 2 ready")
    assert not pg.is_checked("#knob-train_g input[type=checkbox]")  # the GAN is trained: only the agent learns
    assert "fresh" in pg.evaluate(STATUS)
    pg.click("#train-btn")
    status_has(pg, "running")
    # Q per action over training fills in as the fresh agent learns; the x-axis starts with the lesson (the page
    # showed the shipped model's 31 000-step heatmap before the lesson was picked)
    wait_js(pg, f"() => {{ const t = ({TRACES})('q-heatmap'); return t.length && t[0].x.length >= 3 "
                "&& t[0].x[0] > 30000 }", timeout=120_000)  # CI's 2 cores also run the browser and the server
    assert len(pg.evaluate(TRACES, "q-heatmap")[0]["y"]) == 17
    pg.click("#pause-btn")
    status_has(pg, "paused")


def test_lesson_3_steers_towards_the_preselected_goal(page, app_url):
    pg = page
    open_page(pg, app_url + "?lesson=3")
    status_has(pg, "lesson 3 ready")
    pg.wait_for_selector("#explore-goal", state="visible")  # the lesson opens on Explore
    wait_js(pg, "() => document.querySelector('#explore-goal input').value === '7'")
    pg.click("#agent-rollout-btn")
    wait_js(pg, "() => document.querySelector('#explore-info').innerText.match(/stop|t = [3-9]/)", timeout=30_000)
    wait_js(pg, f"() => {{ const t = ({TRACES})('explore-traj-plot'); return t.length && t[0].y.length >= 3 }}")
    agent = pg.evaluate(TRACES, "explore-traj-plot")[0]["y"]
    assert agent[-1] > agent[0], agent  # Φ (with the goal's class term) rises along the agent's moves


def test_share_link_reproduces_lesson_and_changed_knobs(page, app_url, browser):
    pg = page
    open_page(pg, app_url + "?lesson=1")
    status_has(pg, "lesson 1 ready")
    box = pg.locator("#knob-lr_d input[type=number]")
    box.fill("0.005")
    box.press("Enter")
    pg.get_by_text("share links for the class, config as JSON").click()
    pg.click("#share-btn")
    wait_js(pg, "() => document.querySelector('#share-query textarea, #share-query input').value.includes('lr_d')")
    link = pg.input_value("#share-query textarea, #share-query input")
    assert "lesson=1" in link and "seed=0" in link and "lr_d=0.005" in link
    other = new_tab(browser)  # a context of its own (see new_tab)
    try:
        open_page(other, link)
        status_has(other, "lesson 1 ready")
        assert other.input_value("#knob-lr_d input[type=number]") == "0.005"
    finally:
        other.close()
    # the students' link: a page that follows the run training here, read-only, once it starts
    students = pg.input_value("#students-link textarea, #students-link input")
    assert students.endswith("?watch=1")
    student = new_tab(browser)  # a context of its own (see new_tab)
    try:
        open_page(student, students)
        status_has(student, "nobody is training yet")
        pg.click("#train-btn")
        status_has(pg, "running")
        status_has(student, "watching another visitor's run")
        pg.click("#pause-btn")
        status_has(pg, "paused")
    finally:
        student.close()


def test_teacher_mode_hides_parts_and_keyboard_drives_training(page, app, app_url):
    import torch

    pg = page
    open_page(pg, app_url + "?preset=tiny&hide=knobs,models,explain")
    assert not pg.is_visible("#knob-col") and not pg.is_visible("#tab-models-button")
    assert pg.is_visible("#tab-explore-button") and pg.is_visible("#train-btn")
    assert "space" in pg.inner_text("#keys-help")
    pg.click("#status")  # focus on the page, not on a field
    pg.keyboard.press(" ")
    status_has(pg, "running")
    pg.keyboard.press(" ")
    status_has(pg, "paused")
    pg.click("#train-btn")  # a mouse click leaves the focus on Train: space must still pause, not press it again
    status_has(pg, "running")
    pg.keyboard.press(" ")
    status_has(pg, "paused")
    pg.keyboard.press("ArrowRight")
    status_has(pg, "stepping 10")
    wait_js(pg, f"() => ({STATUS})().split('\\n')[0].includes('paused')")  # the 10 steps are done
    pg.keyboard.press("r")
    pg.wait_for_selector("#reset-confirm", state="visible")  # R asks first, like the button
    pg.click("#reset-cancel")
    box = pg.locator("#step-n input")
    box.fill("3")
    box.press(" ")  # typing into a field is not a shortcut
    time.sleep(1.5)
    text = pg.evaluate(STATUS)
    assert "paused" in text and "running" not in text, text
    # step modes from the keyboard: D trains D alone, G trains G alone, A the agent alone
    (run,) = [r for r in app[0].ctx.registry.runs() if r.owner]
    t = run.runner

    def weights():
        with t.model_access() as tr:
            return {k: torch.cat([p.detach().flatten() for p in m.parameters()]).clone()
                    for k, m in (("G", tr.G), ("D", tr.D), ("Q", tr.agent.q))}

    for key, word, moves in (("d", "stepped D", {"D"}), ("g", "stepped G", {"G"}), ("a", "stepped the agent", {"Q"})):
        before, step = weights(), t.step_count
        pg.click("#status")
        pg.keyboard.press(key)
        status_has(pg, word)
        assert t.wait(30) and t.step_count == step + 1
        after = weights()
        assert {k for k in before if not torch.equal(before[k], after[k])} == moves, key


def test_slow_motion_step_narrates_the_diagram_and_speed_says_what_it_does(page, app, app_url):
    pg = page
    open_page(pg, app_url + "?preset=tiny")
    caption = "() => document.querySelector('#narration-caption').textContent"
    # the page records every caption the narration shows, with the nodes lit at that moment (read below: no race
    # with a busy machine moving on to the next sub-step between two round trips)
    pg.evaluate(RECORD_NARRATION)
    pg.click("#slowmo-btn")
    status_has(pg, "slow motion: one joint step")
    shown = "(i) => window.__captions.find(c => c.text.startsWith(i + ' / 8'))"
    wait_js(pg, f"() => ({shown})(1)")
    # about a second per sub-step; the caption carries that step's own values
    wait_js(pg, f"() => ({shown})(2)", timeout=5_000)
    first, second = pg.evaluate(f"() => [({shown})(1), ({shown})(2)]")
    assert first["active"] == "node-z,node-g,node-fake", first
    assert re.search(r"D\(x\) = -?[0-9]", second["text"]), second
    pg.click("#narr-pause")
    wait_js(pg, "() => window.__narr && window.__narr.paused")
    frozen, n_shown = pg.evaluate(f"() => [({caption})(), window.__captions.length]")
    time.sleep(1.5)  # longer than the 1.1 s between sub-steps
    assert pg.evaluate(f"() => [({caption})(), window.__captions.length]") == [frozen, n_shown]  # paused
    pg.click("#status")
    pg.keyboard.press("n")  # the keyboard advances one sub-step
    wait_js(pg, f"(f) => ({caption})() !== f", arg=frozen, timeout=5_000)
    # reduced motion: every numbered sub-step at once, no animation
    pg.check("#reduced-motion input")
    pg.click("#slowmo-btn")
    wait_js(pg, "() => document.querySelector('#diagram .diagram-box').classList.contains('show-all')")
    assert pg.locator("#diagram ol.narration li").count() == 8 and pg.is_visible("#diagram ol.narration")
    # the speed control says what it does, and slow really slows the run
    pg.get_by_label("fast").check()
    status_has(pg, "charts redrawn only every 10 s")
    pg.get_by_label("slow").check()
    status_has(pg, "about 2 steps a second")
    run = [r for r in app[0].ctx.registry.runs() if r.owner][0].runner
    pg.click("#train-btn")
    status_has(pg, "running")
    s0, t0 = run.step_count, time.monotonic()
    time.sleep(4)
    made = (run.step_count - s0) / (time.monotonic() - t0)
    pg.click("#pause-btn")
    status_has(pg, "paused")
    assert made < 3.0, made  # about 2 steps/s, against ~50 at normal speed
