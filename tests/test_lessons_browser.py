"""The teacher's path in a real browser (headless Debian chromium + Playwright), on the shipped checkpoints: Reset
on the shipped agent-phase model trains G, each lesson opens on the run it needs and something visibly changes,
clicks answer while a run trains, and a share link reproduces the set-up. (Teacher mode, the keyboard, the step
modes and the slow-motion step: test_teaching_browser.py.)

Asserts on what the page shows (status text, Plotly traces, image sources, knob values), not on server internals.
"""

import statistics
import time
from pathlib import Path

import pytest
from helpers import chromium_or_skip, launched_app, new_tab
from lesson_pages import STATUS, TRACES, grid_changes, open_page, status_has, wait_js

chromium_or_skip()
pytest.importorskip("gradio")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "mnist"
if not (SHIPPED / "manifest.json").is_file():
    pytest.skip("the shipped checkpoint is missing", allow_module_level=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # the shipped agent-phase checkpoint (G frozen) is what a teacher first sees; tiny is the app's Reset preset
    with launched_app(tmp_path_factory.mktemp("lessons-app"), checkpoint=SHIPPED) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def app_url(app):
    return app[1]


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
                "&& t[0].x[0] > 30000 }", timeout=120_000,  # CI's 2 cores also run the browser and the server
            show=f"(({TRACES})('q-heatmap')[0] || {{}}).x")
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
