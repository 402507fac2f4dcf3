"""Read one whole build of a directory that a writer may swap while it is being read.

Writers replace datasets, bundles and packs by swapping a finished directory in
(:func:`sdk.atomic.atomic_dir`). A reader that opened ``pack.json`` from one build and
``embeddings.npy`` from the next would pair them silently, or fail with a false "damaged" error.
On POSIX every file is opened relative to one handle of the directory (``openat``), so whatever
is read comes from the build that handle names; where the old build is deleted under the reader,
or where the system has no ``dir_fd`` (Windows), the read is retried once the path names a new
build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from .errors import IntraError

T = TypeVar("T")
#: how many builds a reader follows before it gives up (each swap forces one more read)
ATTEMPTS = 20
_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


class DirReader:
    """Files of one build of `root`, read through one handle of the directory where the OS allows."""

    def __init__(self, root: Path, fd: int | None) -> None:
        self.root = root
        self.real_root = root.resolve()  # once per build read: a pack checks 100,000 paths against it
        self._fd = fd

    def path(self, rel: str) -> Path:
        """The path `rel` names, for messages (the file itself is read through the handle)."""
        return self.root / rel

    @contextlib.contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]:
        """`rel` opened for reading in binary; OSError (FileNotFoundError...) as open() raises it."""
        if self._fd is None:
            with open(self.root / rel, "rb") as f:
                yield f
            return
        fd = os.open(rel, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0), dir_fd=self._fd)
        with os.fdopen(fd, "rb") as f:
            yield f

    def is_file(self, rel: str) -> bool:
        """`rel` exists in this build and is a regular file (links followed)."""
        import stat

        try:
            st = os.stat(rel, dir_fd=self._fd) if self._fd is not None else os.stat(self.root / rel)
        except (OSError, ValueError):
            return False
        return stat.S_ISREG(st.st_mode)

    def size(self, rel: str) -> int:
        """`rel`'s size in bytes (OSError as os.stat raises it)."""
        return (os.stat(rel, dir_fd=self._fd) if self._fd is not None else os.stat(self.root / rel)).st_size

    def read_bytes(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()

    def sha256(self, rel: str) -> str:
        h = hashlib.sha256()
        with self.open(rel) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()


def _identity(path: Path | int) -> tuple[int, int, int] | None:
    """Which build `path` (or an open handle) names. The change time is part of it because a
    deleted build's inode number is soon given to the next one, and renaming a build into place
    sets it."""
    try:
        st = os.fstat(path) if isinstance(path, int) else os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


def read_whole(root: Path, read: Callable[[DirReader], T], error: type[IntraError]) -> T:
    """`read(reader)` over one build of `root`; retried while a writer swaps builds under it.

    An error from a build that was still the current one is the build's own and is raised as is.
    """
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.01 * attempt)  # let the writer finish its swap before the next read (1.9 s at most)
        before = _identity(root)
        fd = None
        if _DIR_FD:
            try:
                fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                fd = None  # not a directory, or unreadable: the reader's own checks name it
        try:
            if fd is not None:
                before = _identity(fd)
            try:
                result = read(DirReader(root, fd))
            except (error, OSError):
                if _identity(root) != before and attempt < ATTEMPTS - 1:
                    continue  # a new build was swapped in while this one was read: read that one
                raise
            if fd is None and _identity(root) != before and attempt < ATTEMPTS - 1:
                continue  # without a handle the files may come from two builds: read again
            return result
        finally:
            if fd is not None:
                os.close(fd)
    raise AssertionError("unreachable")  # the last attempt returns or raises
