"""The last-resort handler of intra's commands: every failure ends in one `error: ...` line, exit 2.

Typer reports bad arguments itself (exit 2, before any work). What escapes a command is caught
here: an IntraError prints its message; anything else is a bug in intra, printed as one line
with its type (set INTRA_DEBUG=1 for the traceback). Messages may carry undecodable bytes from
file names or arguments; they are printed escaped rather than crashing the print.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from .errors import IntraError

DEBUG_ENV = "INTRA_DEBUG"


def printable(text: str) -> str:
    """`text` with lone surrogates (undecodable bytes of argv or file names) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def fail(err: BaseException | str) -> None:
    """Print `error: ...` to stderr and exit 2."""
    typer.secho(printable(f"error: {err}"), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def run_guarded(app: Callable[..., object], prog_name: str) -> None:
    """Run a typer app as a console command behind the last-resort handler."""
    try:
        app(prog_name=prog_name)
    except SystemExit:
        raise
    except IntraError as e:
        sys.stderr.write(printable(f"error: {e}") + "\n")
        sys.exit(2)
    except Exception as e:  # a bug: one line, not a traceback, unless asked for
        if os.environ.get(DEBUG_ENV):
            raise
        sys.stderr.write(printable(f"error: unexpected {type(e).__name__}: {e} (a bug in intra; set {DEBUG_ENV}=1 "
                                   "for the traceback)") + "\n")
        sys.exit(2)
