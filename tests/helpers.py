"""Helpers shared by the runtime tests: small sticker folders, pack.json edits, JSON mutations."""

from __future__ import annotations

import copy
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from sdk.bundle import sha256_file

FOLDER_SIZE = 6

#: Any JSON value, nested a little: what a hostile edit may put in a field.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.sampled_from([2**63, -2**64, 10**400])
    | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def image_folder(synthetic_dir: Path, dest: Path, n: int = FOLDER_SIZE, start: int = 0) -> Path:
    """A plain folder of `n` sticker images taken from the synthetic world."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((synthetic_dir / "images").iterdir())[start:start + n]:
        shutil.copyfile(p, dest / p.name)
    return dest


def rewrite_pack(pack: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply `change` to pack.json in place."""
    meta = json.loads((pack / "pack.json").read_text())
    change(meta)
    (pack / "pack.json").write_text(json.dumps(meta))


def save_vectors(pack: Path, emb: np.ndarray) -> None:
    """Replace embeddings.npy and update its sha256 in pack.json (pack.json is not signed)."""
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    (pack / "embeddings.npy").write_bytes(buf.getvalue())
    rewrite_pack(pack, lambda m: m["embeddings"].update(sha256=sha256_file(pack / "embeddings.npy")))


def _paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):  # the first few stickers stand for all of them
            yield from _paths(v, (*prefix, i))


def mutate(doc: Any, data: Any) -> Any:
    """A copy of `doc` with one field, drawn by hypothesis, deleted or replaced by any JSON value."""
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(list(_paths(doc))[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    return doc
