"""Write files and directories so that a crash or an error never loses or half-writes anything.

Files are written next to their destination (same filesystem), then renamed into place.

Directories (datasets, bundles, packs) are built in a temporary sibling ``.NAME.PID.XXXX.tmp``
and swapped in only when complete:

- A writer replaces only what intra provably wrote: an existing destination must be empty, or hold
  the record ``.intra-output.json`` that every directory writer leaves (its kind and every entry it
  wrote), its kind's marker file (``pack.json``, ``manifest.json``, ``dataset.json``) and nothing
  that the record does not list, beyond the runtime's own caches. A file name alone proves nothing:
  every web app has a ``manifest.json``. Anything else, the input itself, a folder inside the input,
  or a folder holding the input is refused with :class:`OutputError`, and nothing is touched.
- The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux: at every instant the path holds either
  the old or the new directory. Where the kernel or filesystem lacks it, the old directory is
  renamed to ``.NAME.old-PID`` first; a crash between the two renames is repaired by
  :func:`recover`, which loaders and the next write call.
- Leftovers of killed writers (temporary files and directories, and old directories, of processes
  no longer alive) are removed on the next write to the same destination, and by the next load.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError

log = logging.getLogger("intra")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data` (and remove temporary files that killed writers left)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically replace `path` with UTF-8 `text`."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented UTF-8 JSON."""
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_npy(path: Path, array: Any) -> None:
    """Atomically write `array` as a ``.npy`` file (never pickled)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------- the exchange
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None  # other systems take the two-rename path, repaired by recover()
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):  # an old glibc, or no C library to ask
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where this system cannot (then nothing moved)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------------------- leftovers
def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True  # on Windows os.kill(pid, 0) would end the process: never judge a writer dead there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(dest: Path) -> Iterator[tuple[Path, str, int]]:
    """(path, kind "tmp" or "old", writer pid) of every temporary or old sibling of `dest`."""
    if not dest.parent.is_dir():
        return
    stem = f".{dest.name}."
    for p in dest.parent.iterdir():
        name = p.name
        if not name.startswith(stem) or not p.is_dir() or p.is_symlink():
            continue
        rest = name[len(stem):]
        if rest.startswith("old-") and rest[4:].isdigit():
            yield p, "old", int(rest[4:])
        elif rest.endswith(".tmp") and rest.split(".", 1)[0].isdigit():
            yield p, "tmp", int(rest.split(".", 1)[0])


def recover(dest: Path | str) -> bool:
    """Put back a directory that a writer killed mid-swap left at ``.NAME.old-PID`` (True if it
    did), and remove what killed writers left beside `dest` (best effort: a reader may not be
    allowed to write there)."""
    dest = Path(dest)
    restored = restore(dest)
    with contextlib.suppress(OSError):
        _remove_dead(dest)
    return restored


def restore(dest: Path) -> bool:
    """Only the first half of :func:`recover`: put back a directory a killed swap left aside. It
    reads the parent directory only when `dest` is missing, so it is cheap enough for every call."""
    if dest.exists() or dest.is_symlink():
        return False
    for path, kind, pid in _leftovers(dest):
        if kind == "old" and not _alive(pid):
            os.replace(path, dest)
            log.warning("%s: restored from %s, left by a write that was interrupted", dest, path.name)
            return True
    return False


def _remove_dead(dest: Path) -> list[Path]:
    removed = []
    for path, _, pid in list(_leftovers(dest)):
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def remove_stale_files(path: Path) -> None:
    """Delete ``.NAME.PID.XXXX.tmp`` files beside `path` whose writer is no longer alive."""
    stem = f".{path.name}."
    with contextlib.suppress(OSError):
        for p in path.parent.iterdir():
            rest = p.name[len(stem):] if p.name.startswith(stem) else ""
            pid = rest.split(".", 1)[0]
            if rest.endswith(".tmp") and pid.isdigit() and p.is_file() and not p.is_symlink() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    p.unlink()


def remove_leftovers(dest: Path) -> list[Path]:
    """Remove the temporary and old directories that killed writers left beside `dest`."""
    restore(dest)
    return _remove_dead(dest)


# ---------------------------------------------------------------------------- what may be replaced
OWNED_FILE = ".intra-output.json"


def entries(root: Path) -> list[str]:
    """Every file, folder and link under `root` as sorted relative POSIX paths (links not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        found += [(rel / name).as_posix() for name in (*dirnames, *filenames)]
    return sorted(found)


def _not_ours(dest: Path, marker: str, kind: str, own: Sequence[str]) -> str | None:
    """Why non-empty `dest` is not provably a `kind` that intra wrote; None when it is."""
    try:
        record = json.loads((dest / OWNED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"it has no readable {OWNED_FILE}, the record intra leaves in every directory it writes"
    if not isinstance(record, dict) or record.get("kind") != kind or not isinstance(record.get("entries"), list):
        return f"its {OWNED_FILE} does not record a {kind}"
    if not (dest / marker).is_file():
        return f"it has no {marker}"
    written = {*record["entries"], OWNED_FILE}
    foreign = [e for e in entries(dest) if e not in written and not any(fnmatch.fnmatchcase(e, p) for p in own)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        return f"it holds what intra did not write there: {shown}"
    return None


def check_output(dest: Path, marker: str, kind: str, sources: Sequence[Path | str] = (), own: Sequence[str] = ()) -> None:
    """Raise OutputError unless `dest` is free, empty or a `kind` this writer provably wrote (see
    the module's rules; `own`: glob patterns of files the runtime adds later, such as caches), and
    is neither one of `sources` nor inside or around one."""
    dest = Path(dest)
    real = dest.resolve()
    for source in sources:
        src = Path(source).resolve()
        if real == src or real.is_relative_to(src):
            raise OutputError(f"{dest}: the output is the input {source} or inside it; choose another output directory")
        if src.is_relative_to(real):
            raise OutputError(f"{dest}: holds the input {source}; writing there would delete it; choose another output directory")
    if dest.is_symlink():
        raise OutputError(f"{dest}: is a symbolic link; give the directory itself")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise OutputError(f"{dest}: exists and is not a directory; choose another output directory")
    if not any(dest.iterdir()):
        return
    why = _not_ours(dest, marker, kind, own)
    if why is not None:
        raise OutputError(f"{dest}: exists and is not a {kind} that intra wrote ({why}); intra replaces only its own "
                          "output. Choose another output directory, or move this one away yourself")


@contextlib.contextmanager
def atomic_dir(dest: Path, marker: str, kind: str, sources: Sequence[Path | str] = (),
               own: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary directory that becomes `dest` only if the block completes.

    `dest` may only be free, empty, or a `kind` this writer provably wrote (:func:`check_output`,
    before the block runs and again before the swap). The finished directory must contain the
    `marker`; the record of what it holds is added to it. On error the temporary directory is
    removed and an existing `dest` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(dest)
    check_output(dest, marker, kind, sources, own)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if not (tmp / marker).is_file():
            raise OutputError(f"{dest}: the writer did not produce {marker}; nothing was replaced")
        write_json(tmp / OWNED_FILE, {"kind": kind, "marker": marker, "entries": entries(tmp)})
        check_output(dest, marker, kind, sources, own)  # it may have changed while the block ran
        _swap_in(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, dest: Path) -> None:
    """Move `tmp` to `dest`; an existing `dest` ends up at `tmp` (removed by the caller)."""
    if not dest.exists():
        os.replace(tmp, dest)
        return
    if exchange(tmp, dest):
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    os.replace(old, tmp)
