"""Read the JSON metadata files of datasets, bundles and packs with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dirread import DirReader
from .errors import IntraError


def loads(raw: bytes) -> Any:
    """Strict UTF-8 JSON; ValueError for bad bytes, bad JSON and nesting too deep to parse."""
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_json_value(path: Path, error: type[IntraError], missing: str = "") -> Any:
    """The JSON value in `path`; raises `error` when it is missing or not UTF-8 JSON."""
    if path.is_dir():
        raise error(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise error(f"{path}: not found{'; ' + missing if missing else ''}")
    try:
        return loads(path.read_bytes())
    except ValueError as e:
        raise error(f"{path}: unreadable ({e})") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None


def read_json_in(d: DirReader, rel: str, error: type[IntraError], missing: str = "") -> Any:
    """The JSON value in file `rel` of one build read through `d` (:mod:`sdk.dirread`)."""
    path = d.path(rel)
    if path.is_dir():
        raise error(f"{path}: is a directory, not a file")
    try:
        return loads(d.read_bytes(rel))
    except FileNotFoundError:
        raise error(f"{path}: not found{'; ' + missing if missing else ''}") from None
    except ValueError as e:
        raise error(f"{path}: unreadable ({e})") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None


def read_json_object(path: Path, error: type[IntraError], missing: str = "") -> dict[str, Any]:
    """The JSON object in `path`; raises `error` when it is missing, not UTF-8 JSON, or not an object."""
    obj = read_json_value(path, error, missing)
    if not isinstance(obj, dict):
        raise error(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj
