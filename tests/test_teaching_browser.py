"""Teaching tools in a real browser (headless Debian chromium + Playwright): teacher mode hides what the URL names,
the keyboard drives training and the step modes (each moves only its own network's weights), and the slow-motion
step narrates the diagram sub-step by sub-step, pausable, with a reduced-motion path; the speed control says what it
does and slow really slows the run.
"""

import re
import time

import pytest
from helpers import chromium_or_skip, launched_app
from lesson_pages import STATUS, open_page, status_has, wait_js

chromium_or_skip()
pytest.importorskip("gradio")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("teaching-app")) as (demo, url):
        yield demo, url


@pytest.fixture(scope="module")
def app_url(app):
    return app[1]


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
