"""An exclusive lock between processes on one file, held for a read-modify-write.

The lock is taken on a sidecar ``.NAME.lock`` (the file itself is replaced atomically, so a lock
on its inode would not outlive the first write). POSIX systems use ``fcntl.flock``; Windows uses
``msvcrt.locking``. Both are released by the kernel when a process dies, so a killed writer
never leaves the file locked. The sidecar is left in place: removing it would race another
process that has just opened it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def lock_path(path: Path) -> Path:
    """The sidecar that guards `path`."""
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of `path` for the block (waits for another holder to finish)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _lock(fd)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s; a writer may hold it longer
                continue

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
