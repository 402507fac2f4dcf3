"""Write a benchmark's result as DIR/STEM.json and DIR/STEM.md, and print the markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sdk import atomic


def write_result(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """Both files written atomically (an interrupted run leaves the earlier result whole)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / f"{stem}.json", result)
    atomic.write_text(out / f"{stem}.md", markdown)
    typer.echo(markdown)
