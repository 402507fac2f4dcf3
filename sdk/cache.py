"""Where the runtime keeps what it measures: the user's cache directory, never a bundle or a pack.

Apps ship bundles and packs read-only, so nothing the runtime learns on a machine (today: which
CPU precision is faster here) is written beside them. The directory is, in order: the
``cache_dir=`` argument, the ``INTRA_CACHE_DIR`` environment variable, or platformdirs'
``user_cache_dir("intra")`` (``$XDG_CACHE_HOME/intra`` or ``~/.cache/intra`` on Linux,
``~/Library/Caches/intra`` on macOS, ``%LOCALAPPDATA%\\intra\\Cache`` on Windows). Every entry is
keyed by what it depends on, so a stale one is never read: a cache may be deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import check_path

ENV = "INTRA_CACHE_DIR"


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """The runtime's cache directory (not created here: writers create what they need)."""
    if cache_dir is not None:
        return check_path("cache_dir", cache_dir)
    if os.environ.get(ENV):
        return check_path(ENV, os.environ[ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("intra", appauthor=False))
