"""A Ranker over a pack built into a temporary directory: how tools rank a dataset (or a folder)
exactly as apps would, without leaving a pack behind.

A pack built from a dataset carries the training split's usage counts and the stickers' labels, so
rankings through it are what apps get. The pack's vectors are in memory once loaded: the Ranker
keeps working after the directory is gone, but `Match.file` then names files that no longer exist.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .pack_build import build_pack
from .ranker import Ranker


@contextmanager
def temporary_ranker(model: Bundle | Path | str, source: Path | str, precision: str | None = None, progress: bool = False,
                     bias: Mapping[str, float] | None = None, **options: Any) -> Iterator[Ranker]:
    """A Ranker (CPU unless `model` is a Bundle) of `model` over a pack built from `source` (with
    the per-sticker `bias`, if any), for the `with` block's life; `options` are the Ranker's."""
    bundle = model if isinstance(model, Bundle) else Bundle(model, providers="cpu", precision=precision)
    with tempfile.TemporaryDirectory(prefix="intra-temporary-pack-") as tmp:
        build_pack(source, bundle, Path(tmp) / "pack", progress=progress, bias=bias)
        yield Ranker(bundle, Path(tmp) / "pack", **options)
