"""A self-contained HTML page of rankings: the conversation, the top stickers as pictures, why.

Images are inlined as data URIs, so the file can be mailed or opened offline; every text is
escaped. A page is written atomically, and only over a file that is free or an earlier gallery
(its first line is :data:`MARKER`): anything else at the path raises :class:`OutputError`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic
from .context import content_text
from .errors import OutputError
from .ranker import RankResult

MARKER = "<!-- intra gallery -->"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
# the CJK families after the system UI fonts: Chinese turns render wherever the viewer has one of
# them, even when the default sans-serif has no CJK glyphs
STYLE = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Hiragino Sans GB","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;margin:24px;background:#fafafa;color:#222}
.entry{background:#fff;border:1px solid #ddd;border-radius:8px;padding:16px;margin-bottom:20px}
.turn{margin:2px 0}.speaker{color:#777;margin-right:6px}.turn img{height:40px;vertical-align:middle}
.intent{margin:8px 0;color:#345}.row{display:flex;gap:12px;flex-wrap:wrap}
.card{box-sizing:border-box;width:168px;border:2px solid #eee;border-radius:8px;padding:8px;font-size:12px}
.card.gold{border-color:#2a2;background:#f1fbf1}.card img{width:148px;height:148px;object-fit:contain;background:#fff}
.text-sticker{width:148px;height:148px;display:flex;align-items:center;justify-content:center;font-size:20px;text-align:center;background:#fff;word-break:break-word}
.why{color:#555;word-break:break-word}.miss{color:#a33}"""


@dataclass(frozen=True)
class Entry:
    """One ranked conversation: its turns (as passed to rank), the result, and the gold sticker id if known."""

    context: Any
    result: RankResult
    gold: str | None = None
    gold_label: str | None = None


def _image(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return f"data:{MIME.get(path.suffix.lower(), 'application/octet-stream')};base64,{base64.b64encode(data).decode('ascii')}"


def _turns(context: Any, files: Mapping[str, Path]) -> str:
    turns = [context] if isinstance(context, str) else list(context)
    out = []
    for t in turns:
        speaker, text, sticker = "", t, None
        if isinstance(t, Mapping):
            speaker, sticker = str(t.get("speaker", t.get("role", ""))), t.get("sticker")
            text = t["text"] if "text" in t else content_text(t.get("content", ""), "turn")
        elif isinstance(t, (tuple, list)) and len(t) == 2:
            speaker, text = str(t[0]), t[1]
        body = html.escape(str(text))
        if sticker is not None:
            src = _image(files[sticker]) if sticker in files else ""
            body = f'<img src="{src}" alt="{html.escape(str(sticker))}">' if src else f"[sticker {html.escape(str(sticker))}]"
        out.append(f'<div class="turn"><span class="speaker">{html.escape(speaker)}</span>{body}</div>')
    return "\n".join(out)


def _card(rank: int, m: Any, gold: str | None) -> str:
    why = html.escape(m.why.summary(intention=False)) if m.why is not None else ""
    cls = "card gold" if gold is not None and m.sticker_id == gold else "card"
    mark = " &#10004; gold" if "gold" in cls else ""
    face = (f'<img src="{_image(m.file)}" alt="{html.escape(m.sticker_id)}">' if m.file is not None
            else f'<div class="text-sticker">{html.escape(m.descriptions[0] if m.descriptions else m.sticker_id)}</div>')
    return (f'<div class="{cls}">{face}<br>'
            f"<b>#{rank}</b> {html.escape(m.sticker_id)}{mark}<br>score {m.score:.3f} &middot; {html.escape(m.label or '-')}"
            f'<div class="why">{why}</div></div>')


def render(entries: Sequence[Entry], title: str, files: Mapping[str, Path] | None = None) -> str:
    """The page's HTML; `files` maps sticker ids to images, for sticker turns in the conversations."""
    files = files or {}
    parts = [MARKER, "<!DOCTYPE html>", f'<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for n, e in enumerate(entries, 1):
        r = e.result
        intent = f"predicted intention: <b>{html.escape(r.intention)}</b> ({r.intention_probability:.2f})" if r.intention else ""
        if e.gold_label:
            intent += f" &middot; gold intention: {html.escape(e.gold_label)}"
        found = e.gold is None or any(m.sticker_id == e.gold for m in r.matches)
        miss = "" if found else f'<div class="miss">gold sticker {html.escape(e.gold or "")} is not in the top {len(r.matches)}</div>'
        cards = "".join(_card(i, m, e.gold) for i, m in enumerate(r.matches, 1))
        parts.append(f'<div class="entry"><h3>#{n}</h3>{_turns(e.context, files)}<div class="intent">{intent}</div>'
                     f'<div class="row">{cards}</div>{miss}</div>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_gallery(path: Path | str, entries: Sequence[Entry], title: str = "intra", files: Mapping[str, Path] | None = None) -> Path:
    """Write the page atomically; refuses to replace a file that is not an earlier gallery."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; --html takes a file name")
    if path.exists():
        try:
            with path.open("rb") as f:
                first = f.readline().decode("utf-8", "replace").strip()
        except OSError as e:
            raise OutputError(f"{path}: cannot be read ({e.strerror}); not replaced") from None
        if first != MARKER:
            raise OutputError(f"{path}: exists and is not an intra gallery; not replaced (choose another file)")
    try:
        atomic.write_text(path, render(entries, title, files))
    except OSError as e:
        raise OutputError(f"{path}: could not write the page ({e.strerror})") from None
    return path
