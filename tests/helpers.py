"""Helpers shared by the test modules: polling for a condition, and the app launched on a free local port."""

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


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
