"""Helpers shared by the test modules: polling for a condition, and the app launched on a free local port."""

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Runs many `dqngan` command lines in ONE real Python process (each a full `main(argv)`: parsing, loading, the error
# path), so a table of bad inputs costs one interpreter and torch start-up instead of one per case. Each case gets a
# fresh warnings registry (catch_warnings), so a warning shown once by an earlier case is shown again, as it would be
# in a process of its own.
CLI_DRIVER = r"""
import contextlib, io, json, sys, traceback, warnings
from dqngan.cli import main
cases = json.load(open(sys.argv[1]))
results = []
for argv in cases:
    err, out = io.StringIO(), io.StringIO()
    crash = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            rc, crash = None, traceback.format_exc()
    results.append({"rc": rc, "stderr": err.getvalue(), "stdout": out.getvalue(), "crash": crash})
json.dump(results, open(sys.argv[2], "w"))
"""


def run_cli_batch(argvs: list[list[str]], tmp: Path, env: dict, cwd: Path) -> list[dict]:
    """{rc, stderr, stdout, crash} for each argv, run by CLI_DRIVER in one subprocess (crash: an uncaught
    exception's traceback, else None)."""
    (tmp / "cases.json").write_text(json.dumps(argvs))
    p = subprocess.run([sys.executable, "-c", CLI_DRIVER, str(tmp / "cases.json"), str(tmp / "out.json")],
                       capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((tmp / "out.json").read_text())


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader"]


def chromium_or_skip() -> tuple[str, object]:
    """(Debian's chromium, Playwright's sync API) for a browser test module, or skip that module: never
    `playwright install`, which downloads browsers."""
    import shutil

    import pytest

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (run .ci/install-browser.sh)", allow_module_level=True)
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    return path, sync_api


def wait_for(pred, timeout=30.0, every=0.05, what="condition"):
    """Poll pred() until it returns something truthy (returned), or fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def launched_app(tmp: Path, checkpoint: Path | None = None) -> Iterator[tuple]:
    """(demo, url): the app on a free port with a fresh tiny model (or `checkpoint`) and one training slot, the tiny
    preset for fresh runs; Gradio's temporary files and the app's save folder live under `tmp`."""
    from dqngan.ui import build_demo, launch_kwargs

    old_tmp = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "gradio")
    demo = build_demo(checkpoint=checkpoint, preset="tiny", device="cpu", max_running=1, save_root=tmp / "saved")
    try:
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_kwargs())
        yield demo, url
    finally:
        demo.ctx.registry.close()
        demo.close()
        if old_tmp is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old_tmp


def new_tab(context, timeout: int = 60_000):
    """A tab in `context`; given the browser, a tab in a fresh context of its own. Tabs that are open together live in
    separate contexts: Chromium gives a context 6 connections per host, and each app tab holds long-lived streams
    (with three tabs in one, the share-link test took 71-106 s instead of 37-39 s, most likely waiting for one)."""
    pg = context.new_page(viewport={"width": 1280, "height": 900}) if hasattr(context, "new_context") \
        else context.new_page()
    pg.set_default_timeout(timeout)
    return pg
