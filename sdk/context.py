"""Parse what apps pass as a conversation (and its knowledge) into checked, capped values.

Accepted contexts: a string; a list of strings; a list of (speaker, text) pairs; a list of
{"speaker", "text"} dicts, or chat messages {"role", "content"} (content a string or a list of
{"type": "text", "text"} parts), or {"speaker", "sticker": <id in the pack>} for a sticker sent earlier in
the chat (read as the text `sticker_text` gives: the sticker's label or descriptions; an id it does not know
raises :class:`ContextError` naming the turn). bytes are decoded as strict UTF-8. Turns are read newest first and
only the newest MAX_TURNS turns, and the newest MAX_CONTEXT_CHARS characters of them, are kept
(older ones are dropped unread; so are turns beyond the newest MAX_SCANNED, empty or not): the encoder keeps only the latest tokens anyway, and this bounds
the work of any input. Knowledge is {relation: [texts]} over KNOWLEDGE_RELATIONS, capped at
MAX_KNOWLEDGE_CHARS. Anything else raises :class:`ContextError` naming the position and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import IntraError
from .labels import KNOWLEDGE_RELATIONS
from .textprep import alternating

#: The newest this many characters of a context are kept; far more than any encoder reads.
MAX_CONTEXT_CHARS = 200_000
#: Only the latest turns are kept before tokenizing (truncation drops the oldest first).
MAX_TURNS = 64
#: Knowledge beyond this many characters is cut: the encoder gives it half its tokens at most.
MAX_KNOWLEDGE_CHARS = 10_000
#: At most this many turns, and this many knowledge texts, are looked at, empty ones included:
#: a list of millions of empty strings costs no more than a real conversation.
MAX_SCANNED = 1_024

Context = str | bytes | Sequence[Any]


class ContextError(IntraError, ValueError):
    """A context or its knowledge is empty, malformed or not UTF-8."""


def _text(value: Any, where: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ContextError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if not isinstance(value, str):
        raise ContextError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _utf8(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates: no tokenizer can take them
        raise ContextError(f"{where}: not encodable as UTF-8 ({e.reason} at character {e.start})") from None
    return text


StickerText = Callable[[str], "str | None"]


def _sticker_turn(item: Mapping[str, Any], where: str, sticker_text: StickerText | None) -> str:
    if "text" in item:
        raise ContextError(f"{where}: a turn has either 'text' or 'sticker', not both")
    sid = item["sticker"]
    if not isinstance(sid, str) or not sid:
        raise ContextError(f"{where}.sticker: expected a sticker id, got {sid!r}")
    text = sticker_text(sid) if sticker_text is not None else None
    if text is None:
        raise ContextError(f"{where}.sticker: sticker {sid!r} is not in the pack")
    return text


def content_text(value: Any, where: str) -> str:
    """A chat message's content, as chat apps and LLM tools hold it: a string, or a list of parts of
    which the {"type": "text", "text": ...} ones are read (images and the like are skipped)."""
    if isinstance(value, (str, bytes)):
        return _text(value, where)
    if not isinstance(value, Sequence):
        raise ContextError(f"{where}: expected a string or a list of parts, got {type(value).__name__}")
    texts = [_text(part.get("text"), f"{where}[{j}].text") for j, part in enumerate(value[:MAX_SCANNED])
             if isinstance(part, Mapping) and part.get("type") == "text"]
    return "\n".join(texts)


def _turn(item: Any, where: str, sticker_text: StickerText | None = None) -> tuple[str | None, str]:
    """(speaker or None, text) of one turn."""
    if isinstance(item, Mapping):
        who = item.get("speaker", item.get("role"))
        speaker = None if who is None else _text(who, f"{where}.{'speaker' if 'speaker' in item else 'role'}")
        if "sticker" in item:
            return speaker, _sticker_turn(item, where, sticker_text)
        if "text" not in item and "content" in item:
            return speaker, content_text(item["content"], f"{where}.content")
        if "text" not in item:
            raise ContextError(f"{where}: a dict turn needs a 'text' (or 'content', or a 'sticker') field")
        return speaker, _text(item["text"], f"{where}.text")
    if isinstance(item, (tuple, list)):
        if len(item) != 2:
            raise ContextError(f"{where}: a turn pair must be (speaker, text), got {len(item)} items")
        return _text(item[0], f"{where} speaker"), _text(item[1], f"{where} text")
    return None, _text(item, where)


def parse_turns(context: Context, sticker_text: StickerText | None = None) -> list[tuple[str | None, str]]:
    """(speaker or None, text) turns, oldest first, empty turns dropped, the newest kept within the
    caps; raises ContextError.

    `sticker_text(id)` reads a sticker turn (None: not in the pack); without it sticker turns are refused."""
    if isinstance(context, (str, bytes)):
        items: Sequence[Any] = [context]
    elif isinstance(context, Sequence):
        items = context
    else:
        raise ContextError(f"context: expected a string or a list of turns, got {type(context).__name__}")
    turns: list[tuple[str | None, str]] = []
    room = MAX_CONTEXT_CHARS
    for i in range(len(items) - 1, max(len(items) - 1 - MAX_SCANNED, -1), -1):
        where = f"context[{i}]"
        speaker, text = _turn(items[i], where, sticker_text)
        text = text.strip()
        if not text:
            continue
        text = _utf8(text[-room:], where)
        turns.append((speaker, text))
        room -= len(text)
        if room <= 0 or len(turns) == MAX_TURNS:
            break
    if not turns:
        raise ContextError("context: empty (no turn with text)")
    return turns[::-1]


def parse_context(context: Context, sticker_text: StickerText | None = None) -> list[str]:
    """The turn texts of :func:`parse_turns`."""
    return [text for _, text in parse_turns(context, sticker_text)]


def own_turns(speakers: Sequence[str | None], me: str | None = None) -> list[bool]:
    """Which turns are the replying user's own: those said by `me` (default: whoever said the
    newest turn, as in every dataset here, where the sticker follows its sender's own words).
    A turn with no speaker counts by alternation back from the newest (the newest is the user's)."""
    if me is not None and not isinstance(me, str):
        raise ContextError(f"me: expected a speaker's name (a string), got {type(me).__name__}")
    me = me if me is not None else (speakers[-1] if speakers else None)
    alt = alternating(len(speakers))
    return [alt[i] if who is None else who == me for i, who in enumerate(speakers)]


def parse_knowledge(knowledge: Any, where: str = "knowledge") -> dict[str, tuple[str, ...]] | None:
    """{relation: texts} in relation order, empty texts dropped, capped at MAX_KNOWLEDGE_CHARS."""
    if knowledge is None:
        return None
    if not isinstance(knowledge, Mapping):
        raise ContextError(f"{where}: expected {{relation: [texts]}}, got {type(knowledge).__name__}")
    for rel in knowledge:
        if rel not in KNOWLEDGE_RELATIONS:
            raise ContextError(f"{where}: unknown relation {rel!r}; expected {', '.join(KNOWLEDGE_RELATIONS)}")
    out: dict[str, tuple[str, ...]] = {}
    room, scanned = MAX_KNOWLEDGE_CHARS, 0
    for rel in KNOWLEDGE_RELATIONS:
        values = knowledge.get(rel)
        if values is None:
            continue
        if isinstance(values, (str, bytes)):
            values = [values]
        if not isinstance(values, Sequence):
            raise ContextError(f"{where}.{rel}: expected a list of strings, got {type(values).__name__}")
        kept = []
        for j, v in enumerate(values):
            scanned += 1
            if room <= 0 or scanned > MAX_SCANNED:
                break
            text = _text(v, f"{where}.{rel}[{j}]").strip()[:room]
            if text:
                kept.append(_utf8(text, f"{where}.{rel}[{j}]"))
                room -= len(text)
        if kept:
            out[rel] = tuple(kept)
    return out or None
