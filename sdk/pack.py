"""The sticker pack format: a directory of images, `pack.json` and `embeddings.npy`.

``pack.json``::

    {"format_version": 1, "fingerprint": <bundle fingerprint>, "precision": "int8", "model_path": ...,
     "model_relpath"?: "../model", "created": ..., "count": N, "dim": d,
     "embeddings": {"file": "embeddings.npy", "dtype": "float16", "sha256": ...},
     "stickers": [{"id", "file"?, "sha256"?, "label", "attributes", "descriptions"?, "notes"?, "focus"?}, ...],
     "usage"?: {sticker id: count}, "bias"?: {sticker id: number}, "ann"?: {"file": "ann.faiss", "sha256", "digest"}}

A text-only sticker (:mod:`sdk.sticker_texts`) has ``descriptions`` and no ``file`` or ``sha256``.

``fingerprint`` names the bundle that built the pack; ``model_path`` is where that bundle was (an
absolute path) and ``model_relpath`` (when the bundle sat in the pack's parent directory or below
it) where it is relative to the pack, so that a pack copied together with its bundle finds it
(:mod:`sdk.locate`).

``ann`` (optional) names the ANN index stored with a large pack (:mod:`sdk.ann`): its file, the
file's sha256, and the digest of the vectors it indexes, which a Ranker checks before using it.

``usage`` (optional) holds how often each sticker was used: the training split's counts for a pack
built from a dataset, or an app's own counts (``intra pack build --usage FILE``). When present, the
ranker adds the usage prior of :mod:`sdk.scoring`; a sticker missing from it counts 0.

``bias`` (optional) holds a per-sticker bias added to every score (``intra pack build --bias FILE``):
a calibration of this pack for its model, such as the one a benchmark fits on held-out
conversations for macro-F1; a sticker missing from it gets 0.

``embeddings.npy`` holds the L2-normalised sticker vectors H^R (row i = sticker i), float16 by
default, loaded without pickle and upcast once to float32 (numpy has no fast float16 product).
Every file is checked against its sha256 on load; paths must stay inside the pack directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import atomic
from .ann import ANN_FILE, AnnIndex, vectors_digest
from .bundle import sha256_file
from .dirread import DirReader, read_whole
from .errors import IntraError, check_path
from .jsonfile import read_json_in
from .labels import ATTRIBUTES, LABEL_INDEX, check_attributes, check_label
from .locate import bundle_link
from .paths import inside
from .schema import Int, ListOf, MapOf, Obj, OneOf, Opt, check, check_document
from .scoring import l2_normalise, usage_vector, validate_bias, validate_usage
from .sticker_texts import check_descriptions, check_text_only

PACK_FORMAT_VERSION = 1
PACK_FILE = "pack.json"
EMBEDDINGS_FILE = "embeddings.npy"
DTYPES = ("float16", "float32")


class PackError(IntraError, ValueError):
    """A pack is missing, malformed, tampered with or built by another model."""


@dataclass(frozen=True)
class PackSticker:
    """One sticker of a pack: its image file in the pack (None for a text-only sticker) and what describes it."""

    id: str
    file: str | None
    sha256: str | None
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: (attribute, share): the description that drew the selector's attention most, and its share
    #: of the region weights; None when the sticker has no descriptions or the bundle predates it
    focus: tuple[str, float] | None = None
    #: the texts of a text-only sticker (empty for an image sticker)
    descriptions: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, rec: dict[str, Any], where: str) -> PackSticker:
        """A sticker from its pack.json record, checked; PackError names `where` and the field."""
        check(rec, STICKER_SCHEMA, where, PackError)
        return _sticker(rec, where)

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": self.id}
        if self.file is not None:
            rec.update(file=self.file, sha256=self.sha256)
        rec.update(label=self.label, attributes=self.attributes)
        if self.descriptions:
            rec["descriptions"] = list(self.descriptions)
        if self.notes:
            rec["notes"] = list(self.notes)
        if self.focus is not None:
            rec["focus"] = {"attribute": self.focus[0], "share": self.focus[1]}
        return rec


def sticker_turn_text(sticker: PackSticker) -> str:
    """A sticker as a turn of text: its label, else its descriptions in attribute order (then a
    text-only sticker's own descriptions), else "a sticker".

    On the synthetic world's validation split (experiments.sticker_turns, docs/results/sticker-turns.md)
    the label read best of the text readings, and the sticker's vector (the query moved toward it)
    barely moved the ranking either way."""
    if sticker.label:
        return sticker.label
    described = [sticker.attributes[a] for a in ATTRIBUTES if sticker.attributes.get(a)] + list(sticker.descriptions)
    return "; ".join(described) if described else "a sticker"


STICKER_SCHEMA = Obj({"id": str},
                     {"file": Opt(str), "sha256": Opt(str), "descriptions": Opt(ListOf(str)),
                      "label": Opt(str), "attributes": Opt(MapOf(str)), "notes": Opt(ListOf(str)),
                      "focus": Opt(Obj({"attribute": OneOf(ATTRIBUTES), "share": float}))})
PACK_SCHEMA = Obj(
    {"format_version": int, "fingerprint": str, "count": Int(0, 100_000_000), "dim": Int(1, 65_536),
     "embeddings": Obj({"file": str, "sha256": str}, {"dtype": OneOf(DTYPES)}),
     "stickers": ListOf(STICKER_SCHEMA)},
    {"precision": Opt(str), "model_path": Opt(str), "model_relpath": Opt(str), "created": Opt(str), "source_kind": Opt(str),
     "shard": Opt(ListOf(Int(0), 2, 2)), "merged_from": Opt(ListOf(str)),
     "ann": Opt(Obj({"file": str, "sha256": str, "digest": str}))},  # usage, bias: checked by validate_usage, validate_bias
)
#: Stored vectors are unit length; float16 storage keeps them within about 1e-3 of it.
NORM_TOLERANCE = 1e-2


@dataclass(frozen=True)
class PackMeta:
    """pack.json, typed: written by :func:`write_pack`, read by :func:`load_pack`."""

    fingerprint: str
    dim: int
    embeddings_sha256: str
    stickers: tuple[PackSticker, ...]
    dtype: str = "float16"
    embeddings_file: str = EMBEDDINGS_FILE
    created: str | None = None
    precision: str | None = None
    model_path: str | None = None
    source_kind: str | None = None
    shard: tuple[int, int] | None = None
    merged_from: tuple[str, ...] = ()
    usage: dict[str, float] | None = None
    model_relpath: str | None = None
    ann: dict[str, str] | None = None  # the stored ANN index: file, sha256, digest of the vectors it indexes
    bias: dict[str, float] | None = None

    @property
    def count(self) -> int:
        return len(self.stickers)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "format_version": PACK_FORMAT_VERSION, "fingerprint": self.fingerprint, "created": self.created,
            "precision": self.precision, "model_path": self.model_path, "source_kind": self.source_kind,
            "shard": list(self.shard) if self.shard else None, "count": self.count, "dim": self.dim,
            "embeddings": {"file": self.embeddings_file, "dtype": self.dtype, "sha256": self.embeddings_sha256},
            "stickers": [s.record() for s in self.stickers]}
        if self.model_relpath is not None:
            obj["model_relpath"] = self.model_relpath
        if self.ann is not None:
            obj["ann"] = dict(self.ann)
        if self.merged_from:
            obj["merged_from"] = list(self.merged_from)
        if self.usage is not None:
            obj["usage"] = self.usage
        if self.bias is not None:
            obj["bias"] = self.bias
        return obj

    @classmethod
    def from_json(cls, obj: Any, where: str) -> PackMeta:
        """Parse and check pack.json's object; PackError names `where` and the field at fault."""
        check_document(obj, PACK_FORMAT_VERSION, PACK_SCHEMA, where, PackError)
        if len(obj["stickers"]) != obj["count"]:
            raise PackError(f"{where}: field 'stickers' must list exactly 'count' ({obj['count']}) stickers")
        stickers = tuple(_sticker(rec, f"{where}: stickers[{i}]") for i, rec in enumerate(obj["stickers"]))
        ids = [s.id for s in stickers]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise PackError(f"{where}: field 'stickers': duplicate sticker id {dup!r}")
        usage, bias = obj.get("usage"), obj.get("bias")
        shard = obj.get("shard")
        emb = obj["embeddings"]
        return cls(obj["fingerprint"], obj["dim"], emb["sha256"], stickers, emb.get("dtype", "float16"), emb["file"],
                   obj.get("created"), obj.get("precision"), obj.get("model_path"), obj.get("source_kind"),
                   (shard[0], shard[1]) if shard else None, tuple(obj.get("merged_from") or ()),
                   validate_usage(usage, ids, f"{where}: field 'usage'", PackError) if usage is not None else None,
                   obj.get("model_relpath"), dict(obj["ann"]) if obj.get("ann") else None,
                   validate_bias(bias, ids, f"{where}: field 'bias'", PackError) if bias is not None else None)


def label_ids(stickers: Sequence[PackSticker]) -> list[int]:
    """Each sticker's label index, -1 where it has none (what the score's label term reads)."""
    return [LABEL_INDEX[s.label] if s.label is not None else -1 for s in stickers]


def _sticker(rec: dict[str, Any], where: str) -> PackSticker:
    label = rec.get("label")
    if label is not None:
        check_label(label, where, PackError)
    focus = rec.get("focus")
    file, sha = rec.get("file"), rec.get("sha256")
    if (file is None) != (sha is None):
        raise PackError(f"{where}: fields 'file' and 'sha256' come together")
    attributes = check_attributes(rec.get("attributes"), where, PackError)
    descriptions = check_descriptions(rec.get("descriptions"), where, PackError)
    check_text_only(file is not None, attributes, descriptions, where, PackError)
    return PackSticker(rec["id"], file, sha, label, attributes, tuple(rec.get("notes") or ()),
                       (focus["attribute"], float(focus["share"])) if focus else None, descriptions)


@dataclass
class Pack:
    """A loaded pack: its metadata, float32 vectors and, when it stores one, its ANN index's bytes
    (read from the same build, checked against their sha256)."""

    root: Path
    meta: PackMeta
    embeddings: np.ndarray
    ann_data: bytes | None = None

    @property
    def stickers(self) -> tuple[PackSticker, ...]:
        return self.meta.stickers

    @property
    def fingerprint(self) -> str:
        return self.meta.fingerprint

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stickers)

    def __len__(self) -> int:
        return len(self.stickers)

    def __repr__(self) -> str:  # the dataclass's own would print every hash and the whole array
        usage = "with usage counts" if self.usage is not None else "no usage counts"
        return (f"Pack({str(self.root)!r}: {len(self)} stickers, dim {self.meta.dim}, {self.meta.dtype}, "
                f"model {self.fingerprint[:12]}, {usage})")

    @property
    def usage(self) -> dict[str, float] | None:
        """Usage counts by sticker id, or None when the pack carries none (prior off)."""
        return self.meta.usage

    def usage_counts(self) -> np.ndarray | None:
        """Usage counts aligned with the stickers (0 where missing); None without counts."""
        return usage_vector(self.usage, self.ids)

    def sticker_bias(self) -> np.ndarray | None:
        """Per-sticker biases aligned with the stickers (0 where missing); None when the pack has none."""
        return usage_vector(self.meta.bias, self.ids)

    def label_ids(self) -> list[int]:
        """Each sticker's label index, -1 where it has none."""
        return label_ids(self.stickers)

    def path_of(self, i: int) -> Path | None:
        """Sticker i's image, None for a text-only sticker."""
        file = self.stickers[i].file
        return None if file is None else self.root / file




def _check_file(d: DirReader, rel: str, sha256: str, where: str, verify: bool) -> Path:
    path = inside(d.root, rel, where, PackError, "pack directory", d.real_root)
    if not d.is_file(rel):
        raise PackError(f"{where}: file {rel!r} is missing")
    try:
        matches = not verify or d.sha256(rel) == sha256
    except OSError as e:
        raise PackError(f"{where}: file {rel!r} cannot be read ({e.strerror})") from None
    if not matches:
        raise PackError(f"{where}: file {rel!r} does not match its sha256 (changed or damaged)")
    return path


def _npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f, max_header_size=10_000)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f, max_header_size=10_000)
    raise ValueError(f"unsupported .npy version {version}")


def read_vectors(path: Path, count: int, dim: int, f: BinaryIO | None = None) -> np.ndarray:
    """The (count, dim) float16/float32 .npy at `path` (or in the open file `f`) as float32 unit rows.

    The header is checked before anything is allocated: an .npz or pickle, other shapes or
    types, or fewer or more data bytes than the header promises raise PackError, and so do rows
    that are not finite unit vectors.
    """
    try:
        with contextlib.nullcontext(f) if f is not None else open(path, "rb") as fh:
            emb = _read_npy(fh, path, count, dim)
    except (ValueError, OSError, EOFError) as e:
        if isinstance(e, PackError):
            raise
        raise PackError(f"{path}: not a readable .npy array ({e})") from None
    emb = emb.reshape(count, dim).astype(np.float32)
    _check_rows(emb, path)
    return emb


def _read_npy(f: BinaryIO, path: Path, count: int, dim: int) -> np.ndarray:
    shape, fortran, dtype = _npy_header(f)
    if dtype.name not in DTYPES or tuple(shape) != (count, dim) or fortran:
        raise PackError(f"{path}: expected a {count}x{dim} float16/float32 array, got {tuple(shape)} {dtype}")
    expected = count * dim * dtype.itemsize
    got = os.fstat(f.fileno()).st_size - f.tell()
    if got != expected:
        raise PackError(f"{path}: holds {got} data bytes; its header promises {expected}")
    return np.fromfile(f, dtype=dtype, count=count * dim)


def _check_rows(emb: np.ndarray, path: Path) -> None:
    """Every row finite and of unit length: a scaled row would win every query."""
    finite = np.isfinite(emb).all(axis=1)
    if not finite.all():
        raise PackError(f"{path}: row {int(np.argmin(finite))} contains NaN or infinite values")
    norms = np.linalg.norm(emb, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if bad.size:
        raise PackError(f"{path}: row {int(bad[0])} has length {norms[bad[0]]:.4g}, not 1 "
                        f"({bad.size} such rows); pack vectors must be unit length (rebuild the pack)")


def load_pack(root: Path | str, verify: bool = True) -> Pack:
    """Load and check a pack directory; `verify` hashes every file against pack.json.

    A pack rebuilt while it loads is read whole, the old build or the new (:mod:`sdk.dirread`)."""
    root = check_path("pack", root)
    atomic.recover(root)
    return read_whole(root, lambda d: _load(d, verify), PackError)


def _load(d: DirReader, verify: bool) -> Pack:
    meta_path = d.path(PACK_FILE)
    raw = read_json_in(d, PACK_FILE, PackError, f"is {d.root} a pack made by `intra pack build`?")
    meta = PackMeta.from_json(raw, str(meta_path))
    _check_embeddings_size(d, meta)  # before any hashing: a 2 GB file of the wrong size is refused at once
    for i, sticker in enumerate(meta.stickers):
        if sticker.file is not None and sticker.sha256 is not None:
            _check_file(d, sticker.file, sticker.sha256, f"{meta_path}: stickers[{i}]", verify)
    emb_path = _check_file(d, meta.embeddings_file, meta.embeddings_sha256, f"{meta_path}: embeddings", verify)
    try:
        with d.open(meta.embeddings_file) as f:
            vectors = read_vectors(emb_path, meta.count, meta.dim, f)
    except OSError as e:
        raise PackError(f"{emb_path}: cannot be read ({e.strerror})") from None
    return Pack(d.root, meta, vectors, _read_ann(d, meta))


def _read_ann(d: DirReader, meta: PackMeta) -> bytes | None:
    """The stored index's bytes, checked against their sha256 even with verify=False: FAISS is
    never handed bytes that are not the index the pack names (a malformed one can crash it)."""
    if meta.ann is None:
        return None
    where = f"{d.path(PACK_FILE)}: ann"
    _check_file(d, meta.ann["file"], meta.ann["sha256"], where, False)
    try:
        with d.open(meta.ann["file"]) as f:
            data = f.read()
    except OSError as e:
        raise PackError(f"{where}: file {meta.ann['file']!r} cannot be read ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != meta.ann["sha256"]:
        raise PackError(f"{where}: file {meta.ann['file']!r} does not match its sha256 (changed or damaged); "
                        "rebuild the pack (intra pack build)")
    return data


#: a .npy header is at most this long (numpy's own limit on what it reads back, and the magic)
_NPY_HEADER_MAX = 10_000 + 16


def _check_embeddings_size(d: DirReader, meta: PackMeta) -> None:
    data = meta.count * meta.dim * np.dtype(meta.dtype).itemsize
    try:
        size = d.size(meta.embeddings_file)
    except (OSError, ValueError):
        return  # missing or unnamed: the file check that follows names it
    if not data < size <= data + _NPY_HEADER_MAX:
        raise PackError(f"{d.path(meta.embeddings_file)}: {size:,} bytes, but {meta.count} x {meta.dim} {meta.dtype} "
                        f"vectors take {data:,} bytes and a header; the file is not this pack's")


def _check_vectors(out: Path, vectors: np.ndarray, stickers: Sequence[PackSticker]) -> None:
    """The reader's own checks on the vectors about to be written, so nothing it refuses is swapped in."""
    if vectors.ndim != 2 or len(vectors) != len(stickers):
        raise PackError(f"{out}: {len(stickers)} stickers but embeddings of shape {vectors.shape}; nothing was written")
    try:
        _check_rows(vectors.astype(np.float32), out / EMBEDDINGS_FILE)
    except PackError as e:
        raise PackError(f"{e} (a damaged bundle or image?); nothing was written, any pack there is unchanged") from None


def write_pack(out: Path | str, stickers: Sequence[PackSticker], embeddings: np.ndarray, sources: Sequence[Path | None] | None,
               fingerprint: str, details: dict[str, Any] | None = None, dtype: str = "float16",
               inputs: Sequence[Path | str] = (), index_vectors: Callable[[np.ndarray], np.ndarray] | None = None) -> Path:
    """Write a pack atomically; `sources[i]` is copied to `stickers[i].file` (None: files already in
    place; a text-only sticker has neither).

    `details`: the optional fields of :class:`PackMeta` (precision, model_path, model_relpath,
    source_kind, shard, merged_from, usage, bias). `index_vectors`, when given, maps the stored vectors
    (float32) to the vectors an ANN index is built over, and the index is stored in the pack
    (:mod:`sdk.ann`). `out` may only be free, empty or an earlier pack, and never one of `inputs`
    (nor the folders of `sources`), inside one or around one: see :func:`sdk.atomic.atomic_dir`.
    """
    if dtype not in DTYPES:
        raise PackError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    out = Path(out)
    details = dict(details or {})
    if details.get("usage") is not None:
        details["usage"] = validate_usage(details["usage"], [s.id for s in stickers], f"{out}: usage", PackError)
    if details.get("bias") is not None:
        details["bias"] = validate_bias(details["bias"], [s.id for s in stickers], f"{out}: bias", PackError)
    vectors = l2_normalise(np.asarray(embeddings, dtype=np.float32)).astype(dtype)
    _check_vectors(out, vectors, stickers)  # never swap in what load_pack would refuse
    folders = {Path(p).parent for p in sources or () if p is not None}
    with atomic.atomic_dir(out, PACK_FILE, "pack", [*inputs, *sorted(folders)]) as tmp:
        for i, sticker in enumerate(stickers):
            if sticker.file is None:
                continue
            dest = inside(tmp, sticker.file, "write_pack", PackError, "pack directory")
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = sources[i] if sources is not None else None
            if source is not None:
                shutil.copyfile(source, dest)
        atomic.write_npy(tmp / EMBEDDINGS_FILE, vectors)
        if index_vectors is not None:
            details["ann"] = _write_ann(tmp, index_vectors(vectors.astype(np.float32)))
        meta = PackMeta(fingerprint, int(vectors.shape[1]) if vectors.ndim == 2 else 0, sha256_file(tmp / EMBEDDINGS_FILE),
                        tuple(stickers), dtype, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **details)
        atomic.write_json(tmp / PACK_FILE, meta.to_json())
    return out


def _write_ann(tmp: Path, vectors: np.ndarray) -> dict[str, str]:
    data = AnnIndex(vectors).to_bytes()
    atomic.write_bytes(tmp / ANN_FILE, data)
    return {"file": ANN_FILE, "sha256": hashlib.sha256(data).hexdigest(), "digest": vectors_digest(vectors)}


def merge_packs(shards: Sequence[Path | str], out: Path | str, dtype: str | None = None) -> Path:
    """Merge packs built by the same model (e.g. shards of one big catalog) into one pack."""
    packs = [load_pack(p) for p in shards]
    if not packs:
        raise PackError("merge: no packs given")
    fingerprints = {p.fingerprint for p in packs}
    if len(fingerprints) > 1:
        raise PackError(f"merge: packs were built by different models (fingerprints {sorted(fingerprints)})")
    stickers: list[PackSticker] = []
    sources: list[Path | None] = []
    seen: dict[str, Path] = {}
    for p in packs:
        for i, s in enumerate(p.stickers):
            if s.id in seen:
                raise PackError(f"merge: sticker id {s.id!r} is in both {seen[s.id]} and {p.root}")
            seen[s.id] = p.root
            stickers.append(s)
            sources.append(p.path_of(i))
    files = [s.file for s in stickers if s.file is not None]
    if len(set(files)) != len(files):
        raise PackError("merge: two shards use the same file name; build shards with distinct file names")
    first = packs[0].meta
    details: dict[str, Any] = {"precision": first.precision, "source_kind": first.source_kind,
                               "merged_from": tuple(str(p.root) for p in packs)}
    if first.model_path:
        details.update(bundle_link(Path(first.model_path), Path(out)))
    if any(p.usage is not None for p in packs):
        # a shard without counts contributes zeros: its stickers are simply unused so far
        details["usage"] = {k: v for p in packs for k, v in (p.usage or {}).items()}
    if any(p.meta.bias is not None for p in packs):
        details["bias"] = {k: v for p in packs for k, v in (p.meta.bias or {}).items()}
    return write_pack(out, stickers, np.concatenate([p.embeddings for p in packs]), sources, first.fingerprint, details,
                      dtype or first.dtype, inputs=[p.root for p in packs])
