"""The sticker pack format: a directory of images, `pack.json` and `embeddings.npy`.

``pack.json``::

    {"format_version": 1, "fingerprint": <bundle fingerprint>, "precision": "int8", "model_path": ...,
     "created": ..., "count": N, "dim": d,
     "embeddings": {"file": "embeddings.npy", "dtype": "float16", "sha256": ...},
     "stickers": [{"id", "file", "sha256", "label", "attributes", "notes"?}, ...],
     "usage"?: {sticker id: count}}

``usage`` (optional) holds how often each sticker was used: the training split's counts for a pack
built from a dataset, or an app's own counts (``intra pack build --usage FILE``). When present, the
ranker adds the usage prior of :mod:`sdk.scoring`; a sticker missing from it counts 0.

``embeddings.npy`` holds the L2-normalised sticker vectors H^R (row i = sticker i), float16 by
default, loaded without pickle and upcast once to float32 (numpy has no fast float16 product).
Every file is checked against its sha256 on load; paths must stay inside the pack directory.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .bundle import sha256_file
from .errors import IntraError
from .jsonfile import check_version, read_json_object
from .labels import LABEL_INDEX
from .scoring import usage_vector, validate_usage

PACK_FORMAT_VERSION = 1
PACK_FILE = "pack.json"
EMBEDDINGS_FILE = "embeddings.npy"
DTYPES = ("float16", "float32")


class PackError(IntraError, ValueError):
    """A pack is missing, malformed, tampered with or built by another model."""


@dataclass(frozen=True)
class PackSticker:
    id: str
    file: str
    sha256: str
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": self.id, "file": self.file, "sha256": self.sha256, "label": self.label, "attributes": self.attributes}
        if self.notes:
            rec["notes"] = list(self.notes)
        return rec


@dataclass
class Pack:
    """A loaded pack: metadata and float32 vectors."""

    root: Path
    meta: dict[str, Any]
    stickers: tuple[PackSticker, ...]
    embeddings: np.ndarray

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stickers)

    def __len__(self) -> int:
        return len(self.stickers)

    @property
    def usage(self) -> dict[str, float] | None:
        """Usage counts by sticker id, or None when the pack carries none (prior off)."""
        return self.meta.get("usage")

    def usage_counts(self) -> np.ndarray | None:
        """Usage counts aligned with the stickers (0 where missing); None without counts."""
        return usage_vector(self.usage, self.ids)

    def label_ids(self) -> list[int]:
        """Each sticker's label index, -1 where it has none."""
        return [LABEL_INDEX[s.label] if s.label is not None else -1 for s in self.stickers]

    def path_of(self, i: int) -> Path:
        return self.root / self.stickers[i].file


def _inside(root: Path, rel: str, where: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise PackError(f"{where}: path {rel!r} escapes the pack directory")
    return path


def load_pack(root: Path | str, verify: bool = True) -> Pack:
    """Load and check a pack directory; `verify` hashes every file against pack.json."""
    root = Path(root)
    meta_path = root / PACK_FILE
    meta = read_json_object(meta_path, PackError, f"is {root} a pack made by `intra pack build`?")
    check_version(meta, meta_path, PACK_FORMAT_VERSION, PackError)
    for key in ("fingerprint", "count", "dim", "embeddings", "stickers"):
        if key not in meta:
            raise PackError(f"{meta_path}: field {key!r} is missing")
    kinds = {"fingerprint": str, "count": int, "dim": int, "embeddings": dict, "stickers": list}
    for key, kind in kinds.items():
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise PackError(f"{meta_path}: field {key!r} must be {kind.__name__}, got {type(meta[key]).__name__}")
    if meta["count"] < 0 or meta["dim"] < 1:
        raise PackError(f"{meta_path}: fields 'count' and 'dim' must be positive")
    if not isinstance(meta["embeddings"].get("file"), str):
        raise PackError(f"{meta_path}: field 'embeddings.file' is missing")
    records = meta["stickers"]
    if not isinstance(records, list) or len(records) != meta["count"]:
        raise PackError(f"{meta_path}: field 'stickers' must list exactly 'count' ({meta['count']}) stickers")
    stickers = []
    seen = set()
    for i, rec in enumerate(records):
        where = f"{meta_path}: stickers[{i}]"
        if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str) for k in ("id", "file", "sha256")):
            raise PackError(f"{where}: needs string fields 'id', 'file' and 'sha256'")
        if rec["id"] in seen:
            raise PackError(f"{where}: duplicate sticker id {rec['id']!r}")
        seen.add(rec["id"])
        path = _inside(root, rec["file"], where)
        if not path.is_file():
            raise PackError(f"{where}: file {rec['file']!r} is missing")
        if verify and sha256_file(path) != rec["sha256"]:
            raise PackError(f"{where}: file {rec['file']!r} does not match its sha256 (changed or damaged)")
        label = rec.get("label")
        if label is not None and label not in LABEL_INDEX:
            raise PackError(f"{where}: field 'label': unknown label {label!r}")
        stickers.append(PackSticker(rec["id"], rec["file"], rec["sha256"], label, dict(rec.get("attributes") or {}),
                                    tuple(rec.get("notes") or ())))
    if meta.get("usage") is not None:
        meta["usage"] = validate_usage(meta["usage"], [s.id for s in stickers], f"{meta_path}: field 'usage'", PackError)
    emb_meta = meta["embeddings"]
    emb_path = _inside(root, emb_meta["file"], f"{meta_path}: embeddings")
    if not emb_path.is_file():
        raise PackError(f"{emb_path}: embeddings file missing")
    if verify and sha256_file(emb_path) != emb_meta.get("sha256"):
        raise PackError(f"{emb_path}: does not match its sha256 in pack.json (changed or damaged)")
    try:
        emb = np.load(emb_path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PackError(f"{emb_path}: not a readable .npy array ({e})") from None
    if emb.dtype.name not in DTYPES or emb.shape != (meta["count"], meta["dim"]):
        raise PackError(f"{emb_path}: expected {meta['count']}x{meta['dim']} float16/float32, got {emb.shape} {emb.dtype}")
    emb = emb.astype(np.float32)
    if not np.all(np.isfinite(emb)):
        raise PackError(f"{emb_path}: contains NaN or infinite values")
    return Pack(root, meta, tuple(stickers), emb)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def write_pack(out: Path | str, stickers: Sequence[PackSticker], embeddings: np.ndarray, sources: Sequence[Path] | None,
               fingerprint: str, extra: dict[str, Any] | None = None, dtype: str = "float16") -> Path:
    """Write a pack atomically; `sources[i]` is copied to `stickers[i].file` (None: files already in place)."""
    if dtype not in DTYPES:
        raise PackError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    out = Path(out)
    if extra and extra.get("usage") is not None:
        extra = {**extra, "usage": validate_usage(extra["usage"], [s.id for s in stickers], f"{out}: usage", PackError)}
    vectors = normalise(np.asarray(embeddings, dtype=np.float32)).astype(dtype)
    with atomic.atomic_dir(out) as tmp:
        for i, sticker in enumerate(stickers):
            dest = _inside(tmp, sticker.file, "write_pack")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if sources is not None:
                shutil.copyfile(sources[i], dest)
        buf = io.BytesIO()
        np.save(buf, vectors, allow_pickle=False)
        atomic.write_bytes(tmp / EMBEDDINGS_FILE, buf.getvalue())
        meta = {"format_version": PACK_FORMAT_VERSION, "fingerprint": fingerprint,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "count": len(stickers), "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
                "embeddings": {"file": EMBEDDINGS_FILE, "dtype": dtype, "sha256": sha256_file(tmp / EMBEDDINGS_FILE)},
                **(extra or {}), "stickers": [s.record() for s in stickers]}
        atomic.write_json(tmp / PACK_FILE, meta)
    return out


def merge_packs(shards: Sequence[Path | str], out: Path | str, dtype: str | None = None) -> Path:
    """Merge packs built by the same model (e.g. shards of one big catalog) into one pack."""
    packs = [load_pack(p) for p in shards]
    if not packs:
        raise PackError("merge: no packs given")
    fingerprints = {p.fingerprint for p in packs}
    if len(fingerprints) > 1:
        raise PackError(f"merge: packs were built by different models (fingerprints {sorted(fingerprints)})")
    stickers, sources, seen = [], [], {}
    for p in packs:
        for i, s in enumerate(p.stickers):
            if s.id in seen:
                raise PackError(f"merge: sticker id {s.id!r} is in both {seen[s.id]} and {p.root}")
            seen[s.id] = p.root
            stickers.append(s)
            sources.append(p.path_of(i))
    files = [s.file for s in stickers]
    if len(set(files)) != len(files):
        raise PackError("merge: two shards use the same file name; build shards with distinct file names")
    extra = {k: v for k, v in packs[0].meta.items() if k in ("precision", "model_path", "source_kind")}
    extra["merged_from"] = [str(p.root) for p in packs]
    if any(p.usage is not None for p in packs):
        # a shard without counts contributes zeros: its stickers are simply unused so far
        extra["usage"] = {k: v for p in packs for k, v in (p.usage or {}).items()}
    return write_pack(out, stickers, np.concatenate([p.embeddings for p in packs]), sources, packs[0].fingerprint, extra,
                      dtype or packs[0].meta["embeddings"]["dtype"])
