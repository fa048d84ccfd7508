"""What the lesson and teaching browser tests read off the page: the status line, Plotly traces and image sources,
and waits on them (polled in the page, so a busy machine only makes them slower, never wrong)."""

import time

TIMEOUT = 60_000  # ms; the first load fetches big JS chunks (Plotly alone is 4.6 MB)
STATUS = "() => document.querySelector('#status').innerText"
TRACES = "(id) => { const d = document.querySelector(`#${id} .js-plotly-plot`); return d && d.data ? d.data : [] }"
IMG_SRC = "(id) => { const i = document.querySelector(`#${id} img`); return i ? i.getAttribute('src') : null }"


def wait_js(pg, expr, arg=None, timeout=TIMEOUT, show=None):
    """Wait until `expr` is truthy in the page; on a timeout, fail with the status line (and what `show`, a page
    expression, reads) so a slow CI run says where it was stuck."""
    try:
        pg.wait_for_function(expr, arg=arg, timeout=timeout, polling=100)
    except Exception as exc:
        if "Timeout" not in type(exc).__name__:
            raise
        seen = pg.evaluate(STATUS).replace("\n", " | ")
        if show:
            seen += f"; {show}: {pg.evaluate(show)!r}"
        raise AssertionError(f"waited {timeout / 1000:.0f} s for {expr}; the page shows: {seen}") from None


def status_has(pg, text, timeout=TIMEOUT):
    wait_js(pg, f"() => ({STATUS})().includes({text!r})", timeout=timeout)


def open_page(pg, url):
    pg.goto(url)
    pg.wait_for_selector("#train-btn")
    wait_js(pg, f"() => ({STATUS})().includes('step')")


def grid_changes(pg, n, timeout):
    """Wait until the sample grid's image has changed n times (each change is a newer recorded grid)."""
    seen = [pg.evaluate(IMG_SRC, "sample-grid")]
    end = time.monotonic() + timeout
    while len(set(seen)) <= n:
        assert time.monotonic() < end, f"the sample grid changed {len(set(seen)) - 1} time(s), wanted {n}"
        time.sleep(0.3)
        seen.append(pg.evaluate(IMG_SRC, "sample-grid"))
