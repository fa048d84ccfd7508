"""Readable feedback instead of crashes: every handler is wrapped so a bad input becomes a toast (gr.Warning) and,
where the handler says so, a line of status text; the outputs are left as they were (gr.skip), so the user's settings
and the running training survive."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..data import DataError
from ..device import DeviceError
from .session import Busy

log = logging.getLogger(__name__)
EXPECTED = (ConfigError, CheckpointError, DataError, DeviceError, Busy, ValueError, FileNotFoundError,
            PermissionError)


class UserError(Exception):
    """Something the user can fix; the message is shown as is."""


def readable(exc: BaseException) -> str:
    if isinstance(exc, (UserError, Busy, *EXPECTED)):
        msg = str(exc) or type(exc).__name__
    else:  # a bug: say so briefly, the traceback goes to the server log
        msg = f"internal error ({type(exc).__name__}: {exc}); the app keeps running"
    return msg.splitlines()[0][:400]


def warn(msg: str) -> None:
    try:
        gr.Warning(msg)
    except Exception:  # outside a request (unit tests) there is no toast to show
        log.warning(msg)


def skips(n: int) -> Any:
    return gr.skip() if n == 1 else tuple(gr.skip() for _ in range(n))


def guard(n_outputs: int, on_error: Callable[[str], Any] | None = None) -> Callable:
    """Wrap a handler: on an exception warn and return `on_error(message)` (default: skip every output).

    Works for plain functions and generators (a generator that fails mid-way keeps what it already showed)."""

    def deco(fn: Callable) -> Callable:
        def fail(exc: BaseException) -> Any:
            if not isinstance(exc, EXPECTED + (UserError,)):
                log.exception("handler %s failed", fn.__name__)
            msg = readable(exc)
            warn(msg)
            return on_error(msg) if on_error is not None else skips(n_outputs)

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:
                    yield fail(exc)
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return fail(exc)
        return wrapper

    return deco
