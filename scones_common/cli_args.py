"""argparse value types with ranges: a bad flag stops at parsing with argparse's usage error, before any work."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole_number(lo: int, hi: int | None = None, what: str = "a whole number") -> Callable[[str], int]:
    """A type for ``add_argument(type=...)``: an int in [lo, hi] (no upper bound when ``hi`` is None)."""
    bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({bounds})") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is outside {bounds}")
        return value
    return parse


def finite_number(lo: float, hi: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """A type for a finite float in [lo, hi] ((lo, hi] with ``low_open``); NaN and infinities are refused."""
    bounds = f"{'(' if low_open else '['}{lo}, {hi if hi is not None else '∞'}{']' if hi is not None else ')'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number {bounds}") from None
        if not math.isfinite(value) or value < lo or (low_open and value == lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text} is not a number in {bounds}")
        return value
    return parse


port = whole_number(1, 65535, "a TCP port")
