"""The dataset directory format: its one definition, loader and writer.

A dataset directory holds:

- ``dataset.json``: ``{"format_version", "name", "synthetic", "source", "splits": {name: count},
  "notes"}``;
- ``stickers.jsonl``: one sticker per line, ``{"id", "image"?, "label"?, "attributes"?,
  "descriptions"?, "language"?}``; ``image`` is a path relative to the directory, ``attributes``
  maps names from :data:`sdk.labels.ATTRIBUTES` to descriptions (a missing attribute is masked);
  a sticker without ``image`` is text only and needs ``descriptions`` (a list of strings) or
  attributes (:mod:`sdk.sticker_texts`);
- ``<split>.jsonl`` for each split (``train``, ``validation``, ``test``): one conversation per
  line, ``{"id", "context": [{"speaker", "text"}, ...], "sticker_id", "label"?, "labels"?,
  "knowledge"?: {relation: [strings]}}``; ``label`` may be absent where the source has no
  intention label (TweetEval's tweets): no label is ever invented;
- ``extra_intention.jsonl`` (optional): conversations with an intention label but no sticker,
  extra supervision for the intention head.

Loading validates everything before returning and raises :class:`sdk.errors.DatasetError` naming
the file, line and field at fault; nothing is half-loaded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import atomic
from .errors import DatasetError, check_path
from .jsonfile import read_json_object
from .labels import ATTRIBUTES, KNOWLEDGE_RELATIONS, LABEL_INDEX, check_attributes, check_label
from .paths import inside
from .schema import Int, MapOf, Obj, check_document
from .sticker_texts import check_descriptions, check_text_only

DATASET_FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
CATALOG_FILE = "stickers.jsonl"
RETRIEVAL_SPLITS: tuple[str, ...] = ("train", "validation", "test")
EXTRA_INTENTION_SPLIT = "extra_intention"
LABEL_RULE = ("a sticker's label is its catalog label when it has one, else its most frequent intention as the gold "
              "sticker in the training split (ties: first in GoEmotions order); stickers with neither only count "
              "as correct when they are the gold sticker")


@dataclass(frozen=True)
class Turn:
    """One utterance of a conversation."""

    speaker: str
    text: str


@dataclass(frozen=True)
class Sticker:
    """One catalog entry; `image` is relative to the dataset directory (None: a text-only sticker,
    described by `descriptions` and its attributes)."""

    id: str
    image: str | None
    label: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    descriptions: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str, root: Path) -> Sticker:
        """A stickers.jsonl record, checked (its image must exist inside `root`); DatasetError names the field."""
        return _parse_sticker(obj, where, root)

    def to_json(self) -> dict[str, Any]:
        return _sticker_json(self)

    @property
    def image_file(self) -> str:
        """The image's path in the dataset; DatasetError for a text-only sticker, which has none."""
        if self.image is None:
            raise DatasetError(f"sticker {self.id!r} is text only: it has no image")
        return self.image


@dataclass(frozen=True)
class Conversation:
    """A context with its gold sticker (None for intention-only data) and intention label (None
    where the source has none)."""

    id: str
    context: tuple[Turn, ...]
    label: str | None
    sticker_id: str | None = None
    labels: tuple[str, ...] = ()
    knowledge: Mapping[str, tuple[str, ...]] | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str, needs_sticker: bool = True) -> Conversation:
        """A split's record, checked; DatasetError names the field at fault."""
        return _parse_conversation(obj, where, needs_sticker)

    def to_json(self) -> dict[str, Any]:
        return _conversation_json(self)

    @property
    def gold(self) -> str:
        """The gold sticker's id; DatasetError for intention-only data, which has none."""
        if self.sticker_id is None:
            raise DatasetError(f"conversation {self.id!r} has no gold sticker (intention-only data)")
        return self.sticker_id

    @property
    def label_index(self) -> int:
        """The intention label's index in `LABELS`; DatasetError where the source has no label."""
        if self.label is None:
            raise DatasetError(f"conversation {self.id!r} has no intention label")
        return LABEL_INDEX[self.label]

    def turns(self) -> list[tuple[str, str]]:
        """The context as the SDK takes it: (speaker, text) pairs, oldest first."""
        return [(t.speaker, t.text) for t in self.context]

    def knowledge_dict(self) -> dict[str, tuple[str, ...]] | None:
        """The knowledge as the SDK takes it (None when there is none)."""
        return dict(self.knowledge) if self.knowledge else None


INFO_SCHEMA = Obj({"format_version": int, "name": str},
                  {"synthetic": bool, "source": str, "notes": str, "splits": MapOf(Int(0)), "stickers": Int(0)})


@dataclass(frozen=True)
class DatasetInfo:
    """dataset.json, typed: what the dataset is and where it came from.

    `details` keeps each builder's own fields (generator settings, rules, counts) as written.
    """

    name: str
    synthetic: bool = False
    source: str = ""
    notes: str = ""
    splits: Mapping[str, int] = field(default_factory=dict)
    stickers: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format_version": DATASET_FORMAT_VERSION, "name": self.name, "synthetic": self.synthetic, "source": self.source,
                "notes": self.notes, "splits": dict(self.splits), "stickers": self.stickers, **self.details}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> DatasetInfo:
        """Parse and check dataset.json's object; DatasetError names the field at fault."""
        check_document(obj, DATASET_FORMAT_VERSION, INFO_SCHEMA, where, DatasetError)
        known = ("format_version", "name", "synthetic", "source", "notes", "splits", "stickers")
        return cls(obj["name"], obj.get("synthetic", False), obj.get("source", ""), obj.get("notes", ""),
                   obj.get("splits", {}), obj.get("stickers", 0), {k: v for k, v in obj.items() if k not in known})


@dataclass(frozen=True)
class Dataset:
    """A loaded, validated dataset directory."""

    root: Path
    info: DatasetInfo
    stickers: tuple[Sticker, ...]
    splits: Mapping[str, tuple[Conversation, ...]]

    @property
    def sticker_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stickers)

    def sticker_index(self) -> dict[str, int]:
        """Map sticker id to its row in the catalog."""
        return {s.id: i for i, s in enumerate(self.stickers)}

    def image_path(self, sticker: Sticker) -> Path | None:
        """Where the sticker's image is, None for a text-only sticker."""
        return None if sticker.image is None else self.root / sticker.image

    def usage_counts(self, split: str = "train") -> dict[str, int]:
        """How often each sticker is the gold sticker in `split`: the dataset's usage counts, which a
        pack built from it carries for the usage prior (only the training split, never test)."""
        return dict(Counter(c.sticker_id for c in self.splits.get(split, ()) if c.sticker_id is not None))

    def sticker_labels(self, split: str = "train") -> tuple[list[int], str]:
        """Each sticker's intention label id (-1 unknown) and the rule that gave it.

        A sticker's catalog label wins; otherwise its most frequent intention as gold sticker in
        `split` (ties: the label that comes first in GoEmotions order).
        """
        counts: dict[str, Counter] = {}
        for c in self.splits.get(split, ()):
            if c.sticker_id is not None and c.label is not None:
                counts.setdefault(c.sticker_id, Counter())[c.label] += 1
        out = []
        for s in self.stickers:
            if s.label is not None:
                out.append(LABEL_INDEX[s.label])
            elif s.id in counts:
                best = max(counts[s.id].items(), key=lambda kv: (kv[1], -LABEL_INDEX[kv[0]]))[0]
                out.append(LABEL_INDEX[best])
            else:
                out.append(-1)
        return out, LABEL_RULE

    def split(self, name: str) -> tuple[Conversation, ...]:
        if name not in self.splits:
            raise DatasetError(
                f"{self.root}: split {name!r} not present; available: {', '.join(self.splits) or 'none'}"
            )
        return self.splits[name]


# ---------------------------------------------------------------------------- reading


def _where(path: Path, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; errors name the file and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DatasetError(f"{_where(path, number)}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{_where(path, number)}: invalid JSON ({e.msg}, column {e.colno})") from None
        except RecursionError:
            raise DatasetError(f"{_where(path, number)}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{_where(path, number)}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _field(obj: Mapping[str, Any], name: str, where: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    if name not in obj or obj[name] is None:
        if required:
            raise DatasetError(f"{where}: field {name!r} is missing")
        return None
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DatasetError(f"{where}: field {name!r} must be {names}, got {type(value).__name__}")
    return value


def _nonempty_str(obj: Mapping[str, Any], name: str, where: str, required: bool = False) -> str | None:
    value = _field(obj, name, where, str, required)
    if value is not None and not value.strip():
        raise DatasetError(f"{where}: field {name!r} is empty")
    return value


def _required_str(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = _nonempty_str(obj, name, where, required=True)
    if value is None:  # _field raised already; this keeps the type exact
        raise DatasetError(f"{where}: field {name!r} is missing")
    return value


def _parse_sticker(obj: Mapping[str, Any], where: str, root: Path) -> Sticker:
    """Validate one catalog record; `root` is used to check the image exists inside it."""
    sid = _required_str(obj, "id", where)
    image = _nonempty_str(obj, "image", where)
    if image is not None:
        resolved = inside(root, image, f"{where}: field 'image'", DatasetError, "dataset directory")
        if not resolved.is_file():
            raise DatasetError(f"{where}: field 'image': file {image!r} not found in {root}")
    label = _nonempty_str(obj, "label", where)
    if label is not None:
        check_label(label, where, DatasetError)
    clean = check_attributes(obj.get("attributes"), where, DatasetError)
    descriptions = check_descriptions(obj.get("descriptions"), where, DatasetError)
    check_text_only(image is not None, clean, descriptions, where, DatasetError)
    language = _nonempty_str(obj, "language", where)
    return Sticker(id=sid, image=image, label=label, attributes=clean, language=language, descriptions=descriptions)


def _parse_conversation(obj: Mapping[str, Any], where: str, needs_sticker: bool) -> Conversation:
    """Validate one conversation record (sticker ids are checked against the catalog later)."""
    cid = _required_str(obj, "id", where)
    context = _field(obj, "context", where, list)
    turns: list[Turn] = []
    for i, turn in enumerate(context):
        twhere = f"{where}: context[{i}]"
        if not isinstance(turn, dict):
            raise DatasetError(f"{twhere}: expected an object with 'speaker' and 'text'")
        speaker = _field(turn, "speaker", twhere, str)
        text = _field(turn, "text", twhere, str)
        if text.strip():
            turns.append(Turn(speaker=speaker, text=text))
    if not turns:
        raise DatasetError(f"{where}: field 'context' is empty (no turn with text)")
    # intention-only data exists for its label; a retrieval record may lack one (unlabelled source)
    raw_label = _required_str(obj, "label", where) if not needs_sticker else _nonempty_str(obj, "label", where)
    label = None if raw_label is None else check_label(raw_label, where, DatasetError)
    labels_raw = _field(obj, "labels", where, list, required=False) or []
    if not all(isinstance(x, str) for x in labels_raw):
        raise DatasetError(f"{where}: field 'labels' must be a list of strings")
    labels = tuple(check_label(x, where, DatasetError, "labels") for x in labels_raw)
    sticker_id = _nonempty_str(obj, "sticker_id", where, required=needs_sticker)
    if not needs_sticker and sticker_id is not None:
        raise DatasetError(f"{where}: field 'sticker_id' is not allowed in intention-only data")
    knowledge_raw = _field(obj, "knowledge", where, dict, required=False)
    knowledge = None
    if knowledge_raw is not None:
        knowledge = {}
        for rel, values in knowledge_raw.items():
            if rel not in KNOWLEDGE_RELATIONS:
                raise DatasetError(f"{where}: field 'knowledge': unknown relation {rel!r}; expected {', '.join(KNOWLEDGE_RELATIONS)}")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise DatasetError(f"{where}: field 'knowledge.{rel}' must be a list of strings")
            knowledge[rel] = tuple(v for v in values if v.strip())
    return Conversation(id=cid, context=tuple(turns), label=label, sticker_id=sticker_id, labels=labels, knowledge=knowledge)


def load_catalog(root: Path) -> tuple[Sticker, ...]:
    """Load and validate ``stickers.jsonl`` of a dataset or pack directory."""
    root = Path(root)
    path = root / CATALOG_FILE
    stickers: list[Sticker] = []
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        where = _where(path, number)
        sticker = Sticker.from_json(obj, where, root)
        if sticker.id in seen:
            raise DatasetError(f"{where}: field 'id': duplicate sticker id {sticker.id!r} (first on line {seen[sticker.id]})")
        seen[sticker.id] = number
        stickers.append(sticker)
    if not stickers:
        raise DatasetError(f"{path}: the sticker catalog is empty")
    return tuple(stickers)


def load_split(path: Path, sticker_ids: Mapping[str, Any] | None, needs_sticker: bool = True) -> tuple[Conversation, ...]:
    """Load one split file, checking sticker ids against `sticker_ids` when given."""
    out: list[Conversation] = []
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        where = _where(path, number)
        conv = Conversation.from_json(obj, where, needs_sticker)
        if conv.id in seen:
            raise DatasetError(f"{where}: field 'id': duplicate conversation id {conv.id!r} (first on line {seen[conv.id]})")
        seen[conv.id] = number
        if sticker_ids is not None and conv.sticker_id is not None and conv.sticker_id not in sticker_ids:
            raise DatasetError(f"{where}: field 'sticker_id': unknown sticker id {conv.sticker_id!r} (not in {CATALOG_FILE})")
        out.append(conv)
    return tuple(out)


def load_dataset(root: Path | str, splits: Iterable[str] | None = None) -> Dataset:
    """Load and validate a dataset directory; `splits` limits which split files are read."""
    root = check_path("dataset", root)
    atomic.recover(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a dataset directory (it does not exist or is not a directory)")
    info_path = root / INFO_FILE
    info = DatasetInfo.from_json(read_json_object(info_path, DatasetError, f"is {root} a dataset directory?"), str(info_path))
    stickers = load_catalog(root)
    index = {s.id: i for i, s in enumerate(stickers)}
    wanted = list(splits) if splits is not None else [*RETRIEVAL_SPLITS, EXTRA_INTENTION_SPLIT]
    loaded: dict[str, tuple[Conversation, ...]] = {}
    for name in wanted:
        path = root / f"{name}.jsonl"
        if not path.exists():
            if splits is not None:
                raise DatasetError(f"{path}: split {name!r} requested but the file does not exist")
            continue
        loaded[name] = load_split(path, index, needs_sticker=name != EXTRA_INTENTION_SPLIT)
    return Dataset(root=root, info=info, stickers=stickers, splits=loaded)


# ---------------------------------------------------------------------------- writing


def _sticker_json(s: Sticker) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": s.id}
    if s.image is not None:
        rec["image"] = s.image
    if s.descriptions:
        rec["descriptions"] = list(s.descriptions)
    if s.label is not None:
        rec["label"] = s.label
    if s.attributes:
        rec["attributes"] = {k: s.attributes[k] for k in ATTRIBUTES if k in s.attributes}
    if s.language is not None:
        rec["language"] = s.language
    return rec


def _conversation_json(c: Conversation) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": c.id, "context": [{"speaker": t.speaker, "text": t.text} for t in c.context]}
    if c.sticker_id is not None:
        rec["sticker_id"] = c.sticker_id
    if c.label is not None:
        rec["label"] = c.label
    if c.labels:
        rec["labels"] = list(c.labels)
    if c.knowledge is not None:
        rec["knowledge"] = {k: list(v) for k, v in c.knowledge.items()}
    return rec


def _jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_dataset_files(
    directory: Path,
    info: DatasetInfo,
    stickers: Sequence[Sticker],
    splits: Mapping[str, Sequence[Conversation]],
) -> None:
    """Write the metadata, catalog and split files into `directory` (images are the caller's);
    the counts in dataset.json are those of what is written."""
    directory = Path(directory)
    meta = replace(info, splits={name: len(convs) for name, convs in splits.items()}, stickers=len(stickers)).to_json()
    atomic.write_text(directory / CATALOG_FILE, _jsonl(s.to_json() for s in stickers))
    for name, convs in splits.items():
        atomic.write_text(directory / f"{name}.jsonl", _jsonl(c.to_json() for c in convs))
    atomic.write_json(directory / INFO_FILE, meta)

