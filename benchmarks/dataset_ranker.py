"""An `sdk.Ranker` over a pack built from a dataset directory, in a temporary directory.

A pack built from a dataset carries the training split's usage counts and the stickers' labels, so
rankings through it are what apps get; the benchmarks that rank a dataset's conversations through
the SDK start here. The pack's vectors are in memory once loaded: the ranker keeps working after
the directory is gone, but `Match.file` then names files that no longer exist.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sdk.bundle import Bundle
from sdk.pack_build import build_pack
from sdk.ranker import Ranker


@contextmanager
def dataset_ranker(model: Path, data: Path, precision: str | None = None, **options: Any) -> Iterator[Ranker]:
    """A Ranker (CPU) of bundle `model` over a pack built from `data`, for the `with` block's life."""
    bundle = Bundle(model, providers="cpu", precision=precision)
    with tempfile.TemporaryDirectory(prefix="intra-dataset-pack-") as tmp:
        build_pack(data, bundle, Path(tmp) / "pack", progress=False)
        yield Ranker(bundle, Path(tmp) / "pack", **options)
