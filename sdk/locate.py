"""Which bundle built a pack, found from the pack alone: a pack and its bundle may be copied anywhere
together (into an app, onto a phone) and `sdk.rank(context, pack)` still finds the bundle.

A pack names its bundle by fingerprint. pack.json also records where the bundle was when the pack
was built: its path relative to the pack (``model_relpath``, written when the bundle sits in the
pack's parent directory or below it, as ``app/model`` beside ``app/pack``) and its absolute path
(``model_path``). :func:`find_bundle` tries those, then the pack's sibling directories, and takes
the first whose manifest has the pack's fingerprint; otherwise it says which fingerprint it needs.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .bundle import BundleError
from .manifest import MANIFEST

#: how many entries of the pack's parent directory are looked at for a sibling bundle
MAX_SIBLINGS = 256


def bundle_link(bundle_root: Path, pack_dir: Path) -> dict[str, str]:
    """pack.json's fields that say where the bundle is: always the absolute path, and the path
    relative to the pack when the bundle is in the pack's parent directory or below it."""
    bundle_root, pack_dir = Path(bundle_root).resolve(), Path(pack_dir).resolve()
    link = {"model_path": str(bundle_root)}
    if bundle_root.is_relative_to(pack_dir.parent):
        link["model_relpath"] = Path(os.path.relpath(bundle_root, pack_dir)).as_posix()
    return link


def fingerprint_at(path: Path) -> str | None:
    """The fingerprint in `path`'s manifest.json, or None when there is no readable one."""
    try:
        obj = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = obj.get("fingerprint") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def _candidates(pack_root: Path, relpath: object, abspath: object) -> list[Path]:
    found = [Path(os.path.normpath(pack_root / p)) for p in (relpath,) if isinstance(p, str) and p]
    found += [Path(p) for p in (abspath,) if isinstance(p, str) and p]
    with contextlib.suppress(OSError):
        entries = sorted(os.scandir(pack_root.parent), key=lambda e: e.name)[:MAX_SIBLINGS]
        found += [Path(e.path) for e in entries if e.is_dir() and e.name != pack_root.name]
    return found


def find_bundle(pack_root: Path, fingerprint: object, relpath: object = None, abspath: object = None) -> Path:
    """The bundle with `fingerprint` for the pack at `pack_root` (see the module); BundleError
    naming the fingerprint when none of the places holds it."""
    if not isinstance(fingerprint, str) or not fingerprint:
        raise BundleError(f"{pack_root}: the pack does not say which model built it; pass model=BUNDLE_DIR")
    for candidate in _candidates(pack_root, relpath, abspath):
        if fingerprint_at(candidate) == fingerprint:
            return candidate
    where = [str(p) for p in (relpath, abspath) if isinstance(p, str) and p]
    raise BundleError(f"{pack_root}: built by the model bundle with fingerprint {fingerprint}, which is not "
                      + (f"at {' or '.join(where)} nor " if where else "")
                      + "beside the pack; pass model=BUNDLE_DIR (copy that bundle with the pack, or rebuild the pack "
                      "with yours: intra pack build)")
