"""Read the JSON metadata files of datasets, bundles and packs with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import IntraError


def read_json_object(path: Path, error: type[IntraError], missing: str = "") -> dict[str, Any]:
    """The JSON object in `path`; raises `error` when it is missing, not UTF-8 JSON, or not an object."""
    if not path.is_file():
        raise error(f"{path}: not found{'; ' + missing if missing else ''}")
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: unreadable ({e})") from None
    if not isinstance(obj, dict):
        raise error(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def check_version(obj: dict[str, Any], path: Path, expected: int, error: type[IntraError]) -> None:
    version = obj.get("format_version")
    if version != expected:
        raise error(f"{path}: field 'format_version' is {version!r}; this intra reads version {expected}")
