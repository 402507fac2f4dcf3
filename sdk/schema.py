"""Check decoded JSON (pack.json, manifest.json, the settings objects) against a declarative schema.

A schema is built from a few parts: a Python type (``int`` does not accept ``bool``; ``float``
accepts ``int`` and only finite values: JSON readers accept NaN and Infinity, and one NaN in a
setting turns every vector it touches into NaN), :class:`Opt`, :class:`ListOf`, :class:`MapOf`, :class:`Obj`, :class:`Int` and
:class:`OneOf`. :func:`check` raises the caller's error type naming the field path at fault,
e.g. ``pack.json: field 'stickers[3].attributes' must be an object, got str``. Unknown fields are
allowed (newer writers may add some); readers use only what the schema names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import IntraError

_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object", list: "a list"}


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Opt:
    """The value may be null (or absent, when it is an optional field of an Obj)."""

    spec: Any


@dataclass(frozen=True)
class ListOf:
    spec: Any
    min_len: int = 0
    max_len: int | None = None


@dataclass(frozen=True)
class MapOf:
    """An object with any string keys, every value matching `spec`."""

    spec: Any


@dataclass(frozen=True)
class Obj:
    required: Mapping[str, Any]
    optional: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Int:
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]


class SchemaError(IntraError, ValueError):
    """Raised by :func:`check` when the caller gives no error type of its own."""


def _fail(error: type[IntraError], where: str, path: str, message: str) -> None:
    raise error(f"{where}: field {path!r} {message}" if path else f"{where}: {message}")


def check(value: Any, spec: Any, where: str, error: type[IntraError] = SchemaError, path: str = "") -> None:
    """Raise `error` naming `where` and the field path when `value` does not match `spec`."""
    if isinstance(spec, Opt):
        if value is not None:
            check(value, spec.spec, where, error, path)
    elif isinstance(spec, Obj):
        _check_obj(value, spec, where, error, path)
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            _fail(error, where, path, f"must be a list, got {_type_name(value)}")
        if len(value) < spec.min_len or (spec.max_len is not None and len(value) > spec.max_len):
            bound = f"{spec.min_len} to {spec.max_len}" if spec.max_len is not None else f"at least {spec.min_len}"
            _fail(error, where, path, f"must have {bound} items, has {len(value)}")
        for i, item in enumerate(value):
            check(item, spec.spec, where, error, f"{path}[{i}]")
    elif isinstance(spec, MapOf):
        if not isinstance(value, dict):
            _fail(error, where, path, f"must be an object, got {_type_name(value)}")
        for key, item in value.items():
            check(item, spec.spec, where, error, f"{path}.{key}" if path else key)
    elif isinstance(spec, Int):
        check(value, int, where, error, path)
        if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
            _fail(error, where, path, f"must be from {spec.lo} to {spec.hi}, got {value}")
    elif isinstance(spec, OneOf):
        if not any(type(value) is type(v) and value == v for v in spec.values):
            _fail(error, where, path, f"must be one of {', '.join(map(repr, spec.values))}, got {value!r}")
    else:
        _check_type(value, spec, where, error, path)


def _check_obj(value: Any, spec: Obj, where: str, error: type[IntraError], path: str) -> None:
    if not isinstance(value, dict):
        _fail(error, where, path, f"must be an object, got {_type_name(value)}")
    for key, sub in spec.required.items():
        inner = f"{path}.{key}" if path else key
        if key not in value:
            _fail(error, where, inner, "is missing")
        check(value[key], sub, where, error, inner)
    for key, sub in spec.optional.items():
        if key in value:
            check(value[key], sub, where, error, f"{path}.{key}" if path else key)


#: the largest integer any of intra's formats holds
INT_LIMIT = 2**63 - 1


def _finite_float(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond the float range
        return False


def _check_type(value: Any, kind: type, where: str, error: type[IntraError], path: str) -> None:
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not _finite_float(value):
            _fail(error, where, path, f"must be a finite number, got {str(value)[:40]}")
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not -INT_LIMIT <= value <= INT_LIMIT:  # JSON has no bound; every later float() would overflow
            _fail(error, where, path, f"must be an integer of at most 64 bits, got {str(value)[:40]}...")
    else:
        ok = isinstance(value, kind)
    if not ok:
        _fail(error, where, path, f"must be {_NAMES.get(kind, kind.__name__)}, got {_type_name(value)}")


def check_document(obj: Any, version: int, spec: Any, where: str, error: type[IntraError]) -> dict[str, Any]:
    """`obj` when it is a JSON object of format `version` matching `spec`; `error` naming the field otherwise."""
    if not isinstance(obj, dict):
        raise error(f"{where}: expected a JSON object, got {_type_name(obj)}")
    if obj.get("format_version") != version:
        raise error(f"{where}: field 'format_version' is {obj.get('format_version')!r}; this intra reads version {version}")
    check(obj, spec, where, error)
    return obj
