"""Value parsers for the command line: each rejects bad input with a one-line argparse error (no traceback)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_at_least(lo: int) -> Callable[[str], int]:
    """A whole number >= lo."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    return parse


def finite_float(positive: bool) -> Callable[[str], float]:
    """A finite number, > 0 (positive) or >= 0."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            want = "a positive finite number" if positive else "a finite number >= 0"
            raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
        return v

    return parse


def digit(text: str) -> int:
    """A goal digit 0-9."""
    if text not in [str(i) for i in range(10)]:
        raise argparse.ArgumentTypeError(f"a goal is a digit 0-9, got {text!r}")
    return int(text)
