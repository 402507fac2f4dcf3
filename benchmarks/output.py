"""Write a benchmark's result as DIR/STEM.json and DIR/STEM.md, and print the markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def write_result(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown, encoding="utf-8")
    typer.echo(markdown)
