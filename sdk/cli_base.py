"""What every intra command line shares: the app settings, the error line, the last-resort handler.

Every failure ends in one `error: ...` line and exit 2.

Typer reports bad arguments itself (exit 2, before any work). What escapes a command is caught
here: an IntraError prints its message; anything else is a bug in intra, printed as one line
with its type (set INTRA_DEBUG=1 for the traceback). Messages and results may carry undecodable
bytes from file names or arguments, or terminal control characters from a shared pack; they are
printed escaped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import typer

from .errors import IntraError, MissingExtraError
from .labels import QUERY_MODES
from .manifest import PRECISIONS
from .pack import DTYPES
from .providers import PROVIDER_REQUESTS

DEBUG_ENV = "INTRA_DEBUG"


def choice(values: Sequence[str]) -> Callable[[str | None], str | None]:
    """A typer callback that accepts only `values` (or no value), checked before any work."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise typer.BadParameter(f"expected one of {', '.join(values)}, got {value!r}")
        return value
    return check


PRECISION_HELP = f"Bundle precision: {', '.join(PRECISIONS)}."
PROVIDERS_HELP = f"Where the graphs run: {', '.join(PROVIDER_REQUESTS)}."
MODES_HELP = f"Query mode: {', '.join(QUERY_MODES)} (argmax label, probability-weighted labels, those plus the projected context)."
DTYPES_HELP = f"Storage type of embeddings.npy: {', '.join(DTYPES)}."


def new_app(help: str, **options: object) -> typer.Typer:
    """A typer app with intra's settings: no completion install, plain help whose "[default: ...]"
    texts show literally (rich markup would eat them), tracebacks left to :func:`run_guarded`."""
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       rich_markup_mode=None, **options)  # type: ignore[arg-type]


def require_extra(what: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError when any of `modules` cannot be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(what, extra, module)


#: control characters (but tab and newline) and bidirectional overrides: a sticker id or description
#: from a shared pack must not move the cursor, recolour, retitle or reorder the user's terminal
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with lone surrogates (undecodable bytes of argv or file names) and terminal control
    characters escaped; the ``\\uXXXX`` form keeps printed JSON valid JSON."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def say(text: str) -> None:
    """Print a line to stdout, escaped by :func:`printable`."""
    typer.echo(printable(text))


def fail(err: BaseException | str) -> NoReturn:
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
