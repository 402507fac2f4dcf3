"""Paths read from metadata files (pack.json, manifest.json, stickers.jsonl) must stay inside
their directory: a `../../etc/passwd` there is refused, whoever wrote the file."""

from __future__ import annotations

from pathlib import Path

from .errors import IntraError


def inside(root: Path, rel: str, where: str, error: type[IntraError], what: str = "directory",
           resolved_root: Path | None = None) -> Path:
    """`root / rel` resolved; `error` naming `where` when it escapes `root`. `resolved_root`:
    `root.resolve()` when the caller checks many paths of one directory (a pack's 100,000 files)."""
    if "\x00" in rel:
        raise error(f"{where}: path {rel!r} contains a NUL character")
    path = (root / rel).resolve()
    if not path.is_relative_to(resolved_root or root.resolve()):
        raise error(f"{where}: path {rel!r} escapes the {what}")
    return path
