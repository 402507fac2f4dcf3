"""Exception types raised by intra. Every message names the file, field or value at fault."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TypeGuard


class IntraError(Exception):
    """Base class of every error intra raises on purpose."""


class ArgumentError(IntraError, ValueError, TypeError):
    """A public function got an argument of the wrong type or out of range (names the argument).

    It is a ValueError and a TypeError too, so code written against the built-in errors still
    catches it.
    """


def is_number(value: object, lo: float = -math.inf, hi: float = math.inf) -> TypeGuard[float]:
    """`value` is a finite int or float (not a bool) from `lo` to `hi`."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and lo <= value <= hi
    except OverflowError:  # an int beyond the float range (JSON integers have no bound)
        return False


def check_count(name: str, value: object, limit: int = 1_000_000) -> int:
    """`value` when it is an int from 1 to `limit`; ArgumentError naming `name` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise ArgumentError(f"{name} must be an integer from 1 to {limit:,}, got {value!r}")
    return value


def check_path(name: str, value: object) -> Path:
    """`value` as a Path when it is a str or os.PathLike without NUL characters; ArgumentError otherwise."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        path = Path(value)
        if "\x00" not in str(path):
            return path
        raise ArgumentError(f"{name} path {str(path)!r} contains a NUL character")
    raise ArgumentError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}"[:300])


class OutputError(IntraError, ValueError):
    """An output path intra refuses to write: it holds something intra did not write, or the input."""


class DatasetError(IntraError, ValueError):
    """A dataset directory is malformed: the message names the file, line and field."""


class MissingExtraError(IntraError, ImportError):
    """A command needs an optional dependency group (an extra) that is not installed."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(
            f"{what} needs the '{extra}' extra (module {module!r} is not installed); "
            f"install it with: pip install 'intra[{extra}]' (from a checkout: pip install -e '.[{extra}]')"
        )
        self.extra = extra
