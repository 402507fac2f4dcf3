"""Parse what apps pass as a conversation into a list of turn texts (oldest first).

Accepted: a string; a list of strings; a list of (speaker, text) pairs; a list of
{"speaker", "text"} dicts. bytes are decoded as strict UTF-8. Anything else raises
:class:`ContextError` naming the position and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

from .errors import IntraError

#: Above this many characters a context is refused: no chat turn history is this long, and
#: tokenizing it would waste time before truncation keeps only the latest turns anyway.
MAX_CONTEXT_CHARS = 200_000
#: Only the latest turns are kept before tokenizing (truncation drops the oldest first).
MAX_TURNS = 64

Context = Union[str, bytes, Sequence[Any]]


class ContextError(IntraError, ValueError):
    """A context is empty, malformed, not UTF-8 or too large."""


def _text(value: Any, where: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ContextError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not isinstance(value, str):
        raise ContextError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def parse_context(context: Context) -> list[str]:
    """Turn texts, oldest first, empty turns dropped; raises ContextError."""
    if isinstance(context, (str, bytes)):
        items: list[Any] = [context]
    elif isinstance(context, Sequence):
        items = list(context)
    else:
        raise ContextError(f"context: expected a string or a list of turns, got {type(context).__name__}")
    turns = []
    total = 0
    for i, item in enumerate(items):
        where = f"context[{i}]"
        if isinstance(item, Mapping):
            if "text" not in item:
                raise ContextError(f"{where}: a dict turn needs a 'text' field")
            text = _text(item["text"], f"{where}.text")
        elif isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ContextError(f"{where}: a turn pair must be (speaker, text), got {len(item)} items")
            _text(item[0], f"{where} speaker")
            text = _text(item[1], f"{where} text")
        else:
            text = _text(item, where)
        total += len(text)
        if total > MAX_CONTEXT_CHARS:
            raise ContextError(f"context: longer than {MAX_CONTEXT_CHARS:,} characters; pass only the recent turns")
        if text.strip():
            turns.append(text.strip())
    if not turns:
        raise ContextError("context: empty (no turn with text)")
    return turns[-MAX_TURNS:]
