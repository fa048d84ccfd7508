"""Shared test setup: offline, no telemetry, one torch thread (2-core CI: oversubscribed OpenMP threads stall)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The app trains each run in a child process on a CPU (process_runner.default_kind); the suite's apps train in a
# thread: a child per run imports torch (the whole suite took 400 s instead of 258 s that way, measured), and some
# tests read a trainer's weights in-process. tests/test_process_runner.py runs the app with real children, and
# `DQNGAN_RUNNER=process python -m pytest` runs everything that way.
os.environ.setdefault("DQNGAN_RUNNER", "thread")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Longest files first, so the two xdist workers (one file at a time each, pyproject's addopts) finish together: left
# to itself xdist sends the files with the most tests first, which put these few-but-long browser files at the end,
# one worker running them alone. Seconds per file on a fresh 2-core clone (`--durations=0`), for the order only.
FILE_SECONDS = {"test_lessons_browser.py": 105, "test_teaching_browser.py": 50, "test_sessions.py": 47,
                "test_browser.py": 45, "test_distributed.py": 29, "test_app.py": 17, "test_faults.py": 16,
                "test_process_runner.py": 14, "test_cli.py": 13, "test_explore_draw.py": 13, "test_trainer.py": 12}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))  # stable: each file keeps its own order


@pytest.fixture(scope="session")
def mnist():
    from dqngan.data import load_dataset

    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """A real tiny checkpoint directory (12 steps), shared by the app and Hub tests; tests only read it."""
    from dqngan.checkpoint import save_checkpoint
    from dqngan.config import make_config
    from dqngan.trainer import Trainer

    t = Trainer(make_config("tiny"), "cpu")
    t.run(steps=12)
    return save_checkpoint(t, tmp_path_factory.mktemp("ck") / "tiny-run")


@pytest.fixture
def client(app):
    """A gradio_client session on the module's launched `app` fixture (demo, url)."""
    from gradio_client import Client

    c = Client(app[1], verbose=False, download_files=False)
    yield c
    c.close()


@pytest.fixture
def tiny_cfg():
    from dqngan.config import make_config

    return make_config("tiny")


@pytest.fixture
def make_trainer(mnist, tiny_cfg):
    """A real (small) trainer on the embedded MNIST digits."""
    from dqngan.trainer import Trainer

    def make(**overrides):
        return Trainer(tiny_cfg.replace(**overrides), device="cpu", data=mnist)

    return make


@pytest.fixture
def make_runner(make_trainer):
    """A real (small) trainer behind a background-thread Runner; stopped after the test."""
    from dqngan.runner import Runner

    made = []

    def make(**overrides):
        r = Runner(make_trainer(**overrides))
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through Playwright (never `playwright install`), one per test module; skips the
    module's browser tests where chromium or playwright is missing."""
    from helpers import CHROMIUM_ARGS, chromium_or_skip

    chromium, sync_api = chromium_or_skip()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser):
    """One browser context per module: its HTTP cache keeps the app's big JS chunks (Plotly alone is 4.6 MB) after the
    first page load, as for a teacher's browser; every test still opens a tab (a session) of its own."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    """A fresh tab (a session of its own); closing it at the end makes the app stop that session's run (unload)."""
    from helpers import new_tab

    pg = new_tab(context)
    yield pg
    pg.close()
