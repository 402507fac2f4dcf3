"""Build a sticker pack on the device: vision_encoder + text_encoder + selector through onnxruntime.

Sources:

- a dataset directory (with ``dataset.json`` and ``stickers.jsonl``): its catalog and descriptions;
- a folder of images (png, jpg, jpeg, gif, webp), with optional descriptions in a sidecar
  ``descriptions.json`` ({file name: {"id"?, "label"?, "attributes": {...}}}) or
  ``descriptions.jsonl`` (one {"file", "id"?, "label"?, "attributes"} per line);
- a JSON file listing stickers, ``[{"id", "descriptions"?, "image"?, "label"?, "attributes"?}, ...]``:
  an entry without ``image`` is a text-only sticker (a kaomoji, a bracketed emoticon like
  ``[捂脸]``, a sticker whose image the app does not ship) embedded from its descriptions
  (:mod:`sdk.sticker_texts`); ``image`` is relative to the file's folder. A pack may mix both.

Usage counts (how often each sticker was sent) go into ``pack.json`` for the usage prior of
:mod:`sdk.scoring`: a dataset directory gives its training split's counts, and `usage` (a mapping or
a JSON file {sticker id: count}, e.g. an app's own counts) overrides them. A dataset's stickers
without a catalog label take their most frequent intention in its training split.

Optional OCR (the `ocr` extra, PP-OCRv4 through rapidocr-onnxruntime) fills the "verbal"
attribute of stickers that have none. `shard=(i, n)` builds every n-th sticker starting at i, for
packs built in pieces and merged with :func:`sdk.pack.merge_packs`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .animation import FRAMES
from .ann import ANN_THRESHOLD
from .bundle import Bundle, sha256_file
from .dataset import CATALOG_FILE, INFO_FILE, RETRIEVAL_SPLITS, load_catalog, load_dataset
from .errors import ArgumentError, DatasetError, IntraError, MissingExtraError, OutputError, check_count, check_path
from .imageprep import load_image, to_pixels
from .jsonfile import read_json_object
from .labels import ATTRIBUTES, LABELS, check_attributes, check_label
from .locate import bundle_link
from .pack import DTYPES, PACK_FILE, Pack, PackError, PackSticker, label_ids, load_pack, write_pack
from .paths import inside
from .scoring import ScoreTerms, usage_vector, validate_bias, validate_usage
from .sticker_texts import Slots, check_descriptions, check_text_only, sticker_slots

log = logging.getLogger("intra")
ENGINES = ("local", "ray")
#: the fields of an entry of a JSON list of stickers
LISTING_FIELDS = frozenset({"id", "descriptions", "image", "label", "attributes"})
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".tgs", ".webm")  # the last two need their extras


@dataclass
class SourceSticker:
    id: str
    path: Path | None  # None: a text-only sticker
    label: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    descriptions: tuple[str, ...] = ()


def _sidecar(folder: Path) -> dict[str, dict[str, Any]]:
    js, jl = folder / "descriptions.json", folder / "descriptions.jsonl"
    out: dict[str, dict[str, Any]] = {}
    if js.is_file():
        out.update(read_json_object(js, DatasetError))
    if jl.is_file():
        from .dataset import read_jsonl

        for number, obj in read_jsonl(jl):
            if not isinstance(obj.get("file"), str):
                raise DatasetError(f"{jl}:{number}: field 'file' is missing")
            out[obj["file"]] = obj
    return out


def _dataset_stickers(source: Path) -> tuple[list[SourceSticker], Mapping[str, float] | None]:
    """A dataset's catalog with labels filled from its training split, and that split's usage
    counts (None when the dataset has no training split)."""
    has_train = (source / f"{RETRIEVAL_SPLITS[0]}.jsonl").is_file()
    if not has_train:
        return [SourceSticker(s.id, _image(source, s.image), s.label, dict(s.attributes), s.descriptions)
                for s in load_catalog(source)], None
    ds = load_dataset(source)
    label_ids, _ = ds.sticker_labels()
    stickers = [SourceSticker(s.id, _image(source, s.image), LABELS[lab] if lab >= 0 else None, dict(s.attributes),
                              s.descriptions) for s, lab in zip(ds.stickers, label_ids)]
    return stickers, ds.usage_counts()


def _image(root: Path, image: str | None) -> Path | None:
    return None if image is None else root / image


def _json_stickers(path: Path) -> list[SourceSticker]:
    """The stickers a JSON file lists, checked entry by entry (images inside the file's folder)."""
    from .jsonfile import read_json_value

    entries = read_json_value(path, DatasetError, 'expected [{"id", "descriptions"?, "image"?, ...}, ...]')
    if not isinstance(entries, list) or not entries:
        raise DatasetError(f"{path}: expected a non-empty list of stickers [{{\"id\", \"descriptions\"?, \"image\"?}}, ...]")
    out = []
    for i, d in enumerate(entries):
        where = f"{path}: [{i}]"
        if not isinstance(d, Mapping):
            raise DatasetError(f"{where}: expected an object, got {type(d).__name__}")
        unknown = sorted(set(d) - LISTING_FIELDS)
        if unknown:
            raise DatasetError(f"{where}: unknown field {unknown[0]!r}; expected {', '.join(sorted(LISTING_FIELDS))}")
        sid = d.get("id")
        if not isinstance(sid, str) or not sid.strip():
            raise DatasetError(f"{where}: field 'id' must be a non-empty string, got {sid!r}")
        image = d.get("image")
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise DatasetError(f"{where}: field 'image' must be a path relative to {path.parent}, got {image!r}")
        file = None if image is None else inside(path.parent, image, f"{where}: field 'image'", DatasetError, "folder of the file")
        if file is not None and not file.is_file():
            raise DatasetError(f"{where}: field 'image': {image!r} not found in {path.parent}")
        attrs = check_attributes(d.get("attributes"), where, DatasetError)
        descriptions = check_descriptions(d.get("descriptions"), where, DatasetError)
        check_text_only(file is not None, attrs, descriptions, where, DatasetError)
        label = d.get("label")
        if label is not None:
            check_label(label, where, DatasetError)
        out.append(SourceSticker(sid, file, label, attrs, descriptions))
    return out


def collect(source: Path) -> tuple[list[SourceSticker], str, Mapping[str, float] | None]:
    """The stickers of a dataset directory or an image folder, which kind it was, and the usage
    counts it implies (a dataset's training split; None for a folder or a JSON list)."""
    source = Path(source)
    if (source / INFO_FILE).is_file() and (source / CATALOG_FILE).is_file():
        stickers, counts = _dataset_stickers(source)
        return stickers, "dataset", counts
    if source.is_file() and source.suffix.lower() == ".json":
        listed = _json_stickers(source)
        _check_unique([s.id for s in listed], source)
        return listed, "json", None
    if not source.is_dir():
        raise DatasetError(f"{source}: not a directory of images, a dataset directory or a JSON list of stickers")
    side = _sidecar(source)
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    out = [_folder_sticker(p, side.get(p.name, {}), f"{source}: descriptions of {p.name}") for p in files]
    _check_unique([s.id for s in out], source)
    return out, "folder", None


def _check_unique(ids: list[str], source: Path) -> None:
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            raise DatasetError(f"{source}: sticker id {sid!r} is not unique")
        seen.add(sid)


def _folder_sticker(path: Path, d: Any, where: str) -> SourceSticker:
    """A folder image with its sidecar entry `d`, checked field by field."""
    if not isinstance(d, Mapping):
        raise DatasetError(f"{where}: expected an object {{\"id\"?, \"label\"?, \"attributes\"?}}, got {type(d).__name__}")
    sid = d.get("id")
    if sid is not None and (not isinstance(sid, str) or not sid.strip()):
        raise DatasetError(f"{where}: field 'id' must be a non-empty string, got {sid!r}")
    attrs = check_attributes(d.get("attributes"), where, DatasetError)
    label = d.get("label")
    if label is not None:
        check_label(label, where, DatasetError)
    return SourceSticker(sid or path.stem, path, label, attrs)


def _safe(name: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)[:64] or "sticker"


class OcrReader:
    """Reads the text drawn on a sticker with PP-OCRv4 (rapidocr-onnxruntime)."""

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR  # pyright: ignore[reportMissingImports]  (the 'ocr' extra)
        except ImportError:
            raise MissingExtraError("OCR of sticker captions", "ocr", "rapidocr_onnxruntime") from None
        self._engine = RapidOCR()

    def __call__(self, image) -> str:
        result, _ = self._engine(np.asarray(image.convert("RGB")))
        return " ".join(r[1] for r in (result or []) if r[1].strip())


def _read_sticker_numbers(value: Mapping[str, Any] | Path | str, ids: Sequence[str],
                          validate: Callable[[Any, Sequence[str], str, type[IntraError]], dict[str, float]],
                          option: str, unit: str) -> dict[str, float]:
    """Per-sticker numbers from a mapping or a JSON file {sticker id: `unit`}, checked by `validate`."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        return validate(read_json_object(path, PackError, f"--{option} takes a JSON file {{sticker id: {unit}}}"),
                        ids, str(path), PackError)
    return validate(value, ids, option, PackError)


def read_usage(usage: Mapping[str, Any] | Path | str, ids: Sequence[str]) -> dict[str, float]:
    """Usage counts from a mapping or a JSON file {sticker id: count}, checked against `ids`."""
    return _read_sticker_numbers(usage, ids, validate_usage, "usage", "count")


def read_bias(bias: Mapping[str, Any] | Path | str, ids: Sequence[str]) -> dict[str, float]:
    """Per-sticker biases from a mapping or a JSON file {sticker id: number}, checked against `ids`."""
    return _read_sticker_numbers(bias, ids, validate_bias, "bias", "number")


def with_focus(record: PackSticker, shares: np.ndarray) -> PackSticker:
    """`record` with the attribute that drew the selector most (none when no description was read)."""
    j = int(np.argmax(shares))
    if not np.isfinite(shares[j]) or shares[j] <= 0:
        return record
    return replace(record, focus=(ATTRIBUTES[j], round(float(shares[j]), 4)))


def check_build_args(batch_size: int, dtype: str, shard: tuple[int, int] | None) -> None:
    """Raise ArgumentError for a bad batch size, storage type or shard, before any work is done."""
    check_count("batch_size", batch_size, 4096)
    if dtype not in DTYPES:
        raise ArgumentError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if shard is not None:
        ok = (isinstance(shard, tuple) and len(shard) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
              and shard[1] >= 1 and 0 <= shard[0] < shard[1])
        if not ok:
            raise ArgumentError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")


def per_sticker(vecs: np.ndarray, shares: np.ndarray | None, owner: np.ndarray,
                count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of frames pooled into rows of stickers (`owner[i]`: the sticker of row i): the mean
    of the frames' unit vectors, made unit length again, and the mean attribute shares."""
    if len(owner) == count:
        return vecs, shares
    frames = np.bincount(owner, minlength=count).astype(np.float32)[:, None]
    pooled = np.zeros((count, vecs.shape[1]), np.float32)
    np.add.at(pooled, owner, vecs)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    if shares is None:
        return pooled, None
    mean_shares = np.zeros((count, shares.shape[1]), np.float32)
    np.add.at(mean_shares, owner, shares)
    return pooled, mean_shares / frames


def index_vectors(bundle: Bundle, records: Sequence[PackSticker], usage: Mapping[str, float] | None,
                   ann: bool | None, bias: Mapping[str, float] | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """What an ANN index stored with the pack indexes (the vectors with the score's sticker-side
    columns, as the Ranker augments them), or None when no index is wanted or can be built."""
    if ann is False or (ann is None and len(records) <= ANN_THRESHOLD):
        return None
    if importlib.util.find_spec("faiss") is None:  # asked for explicitly, build_pack has refused already
        log.warning("%d stickers: no ANN index stored (install the 'ann' extra to have one)", len(records))
        return None
    ids = [r.id for r in records]
    terms = ScoreTerms(bundle.score_weights, label_ids(records), usage_vector(usage, ids), bundle.has_intention,
                       usage_vector(bias, ids))
    return terms.sticker_side


@dataclass
class _Rows:
    """The selector's rows of one batch: a row per frame of an image sticker, one per text-only sticker."""

    pixels: list[np.ndarray] = field(default_factory=list)
    slots: list[Slots] = field(default_factory=list)
    text_only: list[bool] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)

    def add(self, j: int, s: SourceSticker, name: str | None, bundle: Bundle, reader: OcrReader | None,
            frames: int) -> PackSticker:
        """Add sticker `s` (position `j` in its batch) and return its pack record."""
        if s.path is None or name is None:
            self.slots.append(sticker_slots(s.attributes, s.descriptions, False))
            self.text_only.append(True)
            self.owner.append(j)
            return PackSticker(s.id, None, None, s.label, dict(s.attributes), descriptions=s.descriptions)
        loaded = load_image(s.path, frames)
        attrs = dict(s.attributes)
        if reader is not None and "verbal" not in attrs:
            text = reader(loaded.image)
            if text:
                attrs["verbal"] = text
        for frame in loaded.frames:  # an animated sticker: a few frames, averaged by per_sticker
            self.pixels.append(to_pixels(frame, bundle.image_settings))
            self.slots.append(sticker_slots(attrs, (), True))
            self.text_only.append(False)
            self.owner.append(j)
        for note in loaded.notes:
            log.warning(note)
        return PackSticker(s.id, name, sha256_file(s.path), s.label, attrs, tuple(loaded.notes))

    def pixel_array(self, bundle: Bundle) -> np.ndarray:
        size = bundle.image_settings.image_size
        return np.stack(self.pixels) if self.pixels else np.zeros((0, 3, size, size), np.float32)


def embed_batch(bundle: Bundle, chunk: Sequence[SourceSticker], names: Sequence[str | None], frames: int,
                reader: OcrReader | None = None) -> tuple[list[PackSticker], np.ndarray]:
    """The pack records and sticker vectors of one batch (both engines embed through this)."""
    rows = _Rows()
    records = [rows.add(j, s, name, bundle, reader, frames) for j, (s, name) in enumerate(zip(chunk, names))]
    vecs, shares = per_sticker(*bundle.sticker_rows(rows.pixel_array(bundle), rows.slots, np.array(rows.text_only)),
                               np.array(rows.owner), len(chunk))
    if shares is not None:
        records = [r if r.file is None else with_focus(r, row) for r, row in zip(records, shares)]
    return records, vecs


def _embed_here(bundle: Bundle, stickers: Sequence[SourceSticker], names: Sequence[str | None], batch_size: int,
                frames: int, reader: OcrReader | None, progress: bool) -> tuple[list[PackSticker], np.ndarray]:
    """Every sticker embedded in this process, batch after batch."""
    from tqdm import tqdm

    records: list[PackSticker] = []
    vectors = []
    with tqdm(total=len(stickers), desc="building pack", unit="sticker", disable=not progress) as bar:
        for k in range(0, len(stickers), batch_size):
            got, vecs = embed_batch(bundle, stickers[k:k + batch_size], names[k:k + batch_size], frames, reader)
            records.extend(got)
            vectors.append(vecs)
            bar.update(len(got))
    return records, np.concatenate(vectors)


def build_pack(source: Path | str, model: Bundle | Path | str, out: Path | str, batch_size: int = 32, dtype: str = "float16",
               ocr: bool | OcrReader = False, shard: tuple[int, int] | None = None, progress: bool = True,
               providers: str | Sequence[str] = "auto", precision: str | None = None,
               usage: Mapping[str, Any] | Path | str | None = None, ann: bool | None = None,
               frames: int = FRAMES, engine: str = "local", ray_address: str | None = None,
               workers: int | None = None, bias: Mapping[str, Any] | Path | str | None = None) -> Pack:
    """Embed every sticker of `source` with `model` and write the pack `out` (atomically).

    `usage`: per-sticker usage counts for the usage prior (a mapping or a JSON file); default:
    a dataset's training-split counts, none for a folder of images. `ann`: store an ANN index
    in the pack (:mod:`sdk.ann`; the 'ann' extra); default: when it has more than ANN_THRESHOLD
    stickers and the extra is installed. `bias`: per-sticker biases added to every score (a mapping
    or a JSON file {sticker id: number}; :mod:`sdk.scoring`); default: none. `frames`: how many frames represent an animated sticker
    (first, middle, last; 1: its first alone). `engine`: "local" (this process) or "ray" (a Ray
    Data job, :mod:`sdk.pack_ray`, on the cluster at `ray_address` or a local Ray, with `workers`
    actors; the same pack). `out` may be free, empty or an earlier pack, never `source` or the
    bundle (:class:`OutputError` before any work).
    """
    check_build_args(batch_size, dtype, shard)
    if engine not in ENGINES:
        raise ArgumentError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers is not None:
        check_count("workers", workers, 1024)
    check_count("frames", frames, 16)
    if ann and importlib.util.find_spec("faiss") is None:
        raise MissingExtraError("an ANN index stored with the pack", "ann", "faiss")
    source = check_path("source", source)
    model_root = model.root if isinstance(model, Bundle) else check_path("model", model)
    files = [Path(f) for f in (usage, bias) if isinstance(f, (str, Path))]
    atomic.check_output(check_path("out", out), PACK_FILE, "pack", [source, model_root, *files])
    found, kind, counts = collect(source)
    if usage is not None:
        counts = read_usage(usage, [s.id for s in found])
    biases = read_bias(bias, [s.id for s in found]) if bias is not None else None
    bundle = model if isinstance(model, Bundle) else Bundle(model, precision=precision, providers=providers)
    # File names carry the position in the whole source, so shards never collide when merged.
    names = [None if s.path is None else f"images/{i:06d}-{_safe(s.id)}{s.path.suffix.lower()}" for i, s in enumerate(found)]
    stickers = found
    if shard is not None:
        index, count = shard
        stickers, names = found[index::count], names[index::count]
        if not stickers:
            raise PackError(f"shard {index}/{count} of {source} is empty")
    reader = ocr if isinstance(ocr, OcrReader) else (OcrReader() if ocr else None)
    if any(s.path is None for s in stickers) and not bundle.manifest.text_only:
        raise PackError(f"{source}: has stickers without an image, which {bundle.root} cannot embed (its sticker side "
                        "reads no descriptions, or it was exported before text-only stickers: re-export it)")
    if engine == "ray":
        from .pack_ray import embed_on_ray

        records, vectors = embed_on_ray(bundle, stickers, names, batch_size, frames, ocr=bool(ocr), address=ray_address,
                                        workers=workers, progress=progress)
    else:
        records, vectors = _embed_here(bundle, stickers, names, batch_size, frames, reader, progress)
    extra: dict[str, Any] = {"precision": bundle.precision, **bundle_link(bundle.root, Path(out)), "source_kind": kind,
                             "shard": shard}
    if counts is not None:
        kept = {r.id for r in records}
        extra["usage"] = {k: v for k, v in counts.items() if k in kept}
    if biases is not None:
        extra["bias"] = {k: v for k, v in biases.items() if k in {r.id for r in records}}
    try:
        write_pack(out, records, vectors, [s.path for s in stickers], bundle.fingerprint, extra, dtype,
                   inputs=[source, bundle.root],
                   index_vectors=index_vectors(bundle, records, extra.get("usage"), ann, extra.get("bias")))
    except OSError as e:
        raise OutputError(f"{out}: could not write the pack ({e}); any existing pack there is unchanged") from None
    return load_pack(out)
