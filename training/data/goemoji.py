"""GoEmoji: real "reply with an image" events from GoEmotions comments that contain an emoji.

Built from ``../shared/data`` (see its README). For each comment the emoji grapheme clusters
(skin tones, ZWJ sequences, flags, keycaps and variation selectors included) are found with
Unicode's extended grapheme rules; the comment with every emoji removed is the context, the emoji
the writer chose is the gold sticker and the comment's GoEmotions label is the intention.

Rules, stated in ``dataset.json`` and in every report:

- several emoji in one comment: the gold sticker is the last catalog emoji in the comment (the
  reply image usually closes the comment); all emoji are removed from the context;
- a skin-toned emoji maps to its base emoji (the catalog has one image per emoji);
- multi-label comments: the intention is the first non-neutral label in GoEmotions' order (neutral
  only when it is the sole label); all labels are kept in the ``labels`` field;
- a comment that is empty once its emoji are removed, or whose emoji are all outside the catalog,
  is dropped and counted.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import regex

from sdk import atomic
from sdk.dataset import INFO_FILE, Conversation, DatasetInfo, Sticker, Turn, write_dataset_files
from sdk.errors import DatasetError
from sdk.labels import LABELS

SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
VARIATION_SELECTORS = {"\ufe0e", "\ufe0f"}
_EMOJI_CLUSTER = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
_GRAPHEME = regex.compile(r"\X")

RULES = {
    "several_emoji": "gold sticker = the last catalog emoji in the comment; every emoji is removed from the context",
    "skin_tones": "a skin-toned emoji maps to its base emoji",
    "multi_label": "intention = first non-neutral label in GoEmotions order (neutral only when alone); all labels kept in 'labels'",
    "dropped": "comments empty without their emoji, or with no catalog emoji, are dropped",
}

# CLDR subcategories mapped to the paper's attributes; other subcategories (hearts, symbols,
# objects) have no face, hand or body, so what the symbol says goes to "verbal".
_ATTRIBUTE_BY_PREFIX = (("face-", "facial_expression"), ("cat-face", "facial_expression"), ("monkey-face", "facial_expression"),
                        ("hand-", "gesture"), ("hands", "gesture"), ("person", "posture"), ("family", "posture"),
                        ("body-parts", "gesture"))


def attribute_for(subcategory: str) -> str:
    """The paper attribute that an emoji subcategory's description fills."""
    for prefix, attribute in _ATTRIBUTE_BY_PREFIX:
        if subcategory.startswith(prefix):
            return attribute
    return "verbal"


def normalize_key(sequence: str) -> str:
    """Catalog key of an emoji sequence: no variation selectors, no skin tones."""
    return "".join(ch for ch in sequence if ch not in VARIATION_SELECTORS and ch not in SKIN_TONES)


def emoji_clusters(text: str) -> list[tuple[int, int, str]]:
    """(start, end, cluster) of every grapheme cluster of `text` that is an emoji."""
    return [(m.start(), m.end(), m.group()) for m in _GRAPHEME.finditer(text) if _EMOJI_CLUSTER.search(m.group())]


def strip_emoji(text: str) -> str:
    """`text` without its emoji clusters, whitespace collapsed."""
    return " ".join(_GRAPHEME.sub(lambda m: " " if _EMOJI_CLUSTER.search(m.group()) else m.group(), text).split())


def _codepoints(unified: str) -> str:
    return "".join(chr(int(h, 16)) for h in unified.split("-"))


@dataclass(frozen=True)
class EmojiEntry:
    key: str
    sticker: Sticker
    source_image: Path


def load_emoji_catalog(source: Path) -> dict[str, EmojiEntry]:
    """Every emoji of the source as a sticker, keyed by :func:`normalize_key`."""
    emoji_dir = source / "emoji"
    try:
        meta = json.loads((emoji_dir / "emoji.json").read_text(encoding="utf-8"))
        en = json.loads((emoji_dir / "annotations" / "en.json").read_text(encoding="utf-8"))
        zh = json.loads((emoji_dir / "annotations" / "zh.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DatasetError(f"{e.filename}: not found; --source must be the shared data directory (with emoji/ and goemotions/)") from None

    def index(annotations: list[dict]) -> dict[str, dict]:
        out = {}
        for entry in annotations:
            for item in [entry, *(entry.get("skins") or [])]:
                out[normalize_key(item.get("emoji") or _codepoints(item["hexcode"]))] = item
        return out

    en_idx, zh_idx = index(en), index(zh)
    catalog: dict[str, EmojiEntry] = {}
    for item in meta:
        seq = _codepoints(item["unified"])
        key = normalize_key(seq)
        image = emoji_dir / "png64" / item["image"]
        if not image.is_file():
            raise DatasetError(f"{image}: image of emoji {item['unified']} ({item['name']}) not found")
        en_a, zh_a = en_idx.get(key, {}), zh_idx.get(key, {})
        name_en = en_a.get("label") or item["name"].lower()
        parts = [f"{name_en}: {', '.join(en_a.get('tags', []))}".rstrip(": ")]
        if zh_a:
            parts.append(f"{zh_a.get('label', '')}：{'，'.join(zh_a.get('tags', []))}".rstrip("："))
        attribute = attribute_for(item.get("subcategory") or "")
        sticker = Sticker(
            id=f"emoji-{item['unified'].lower()}",
            image=f"images/{item['image']}",
            attributes={attribute: " | ".join(p for p in parts if p)},
            language="en+zh",
        )
        catalog[key] = EmojiEntry(key=key, sticker=sticker, source_image=image)
    return catalog


def pick_label(label_ids: list[int]) -> str:
    names = [LABELS[i] for i in sorted(set(label_ids))]
    non_neutral = [n for n in names if n != "neutral"]
    return non_neutral[0] if non_neutral else "neutral"


def read_tsv(path: Path) -> list[tuple[str, list[int], str]]:
    """(text, label ids, comment id) rows of a GoEmotions TSV; errors name file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DatasetError(f"{path}:{number}: expected 3 tab-separated fields (text, labels, id), got {len(parts)}")
        text, labels, cid = parts
        try:
            ids = [int(x) for x in labels.split(",")]
        except ValueError:
            raise DatasetError(f"{path}:{number}: field 'labels': {labels!r} is not a comma-separated list of ids") from None
        bad = [i for i in ids if not 0 <= i < len(LABELS)]
        if bad:
            raise DatasetError(f"{path}:{number}: field 'labels': label id {bad[0]} out of range 0..{len(LABELS) - 1}")
        rows.append((text, ids, cid))
    return rows


def convert_rows(rows, catalog: dict[str, EmojiEntry], stats: Counter) -> tuple[list[Conversation], list[Conversation]]:
    """Split rows into retrieval conversations (with emoji) and intention-only ones (without)."""
    retrieval, plain = [], []
    for text, ids, cid in rows:
        label, labels = pick_label(ids), tuple(LABELS[i] for i in sorted(set(ids)))
        clusters = emoji_clusters(text)
        if not clusters:
            plain.append(Conversation(id=f"ge-{cid}", context=(Turn("user", text),), label=label, labels=labels))
            continue
        stats["with_emoji"] += 1
        known = [catalog[normalize_key(c)] for _, _, c in clusters if normalize_key(c) in catalog]
        context = strip_emoji(text)
        if not known:
            stats["dropped_no_catalog_emoji"] += 1
            continue
        if not context:
            stats["dropped_empty_context"] += 1
            continue
        if len({e.key for e in known}) > 1:
            stats["several_distinct_emoji"] += 1
        if len(labels) > 1:
            stats["multi_label"] += 1
        retrieval.append(Conversation(id=f"ge-{cid}", context=(Turn("user", context),), label=label,
                                      labels=labels, sticker_id=known[-1].sticker.id))
    return retrieval, plain


def build(source: Path | str, out: Path | str, seed: int = 0, validation_fraction: float = 0.15) -> dict[str, int]:
    """Write the GoEmoji dataset directory `out` from the shared data at `source`; return counts."""
    source = Path(source)
    atomic.check_output(Path(out), INFO_FILE, "dataset", [source])  # refuse before reading anything
    ge = source / "goemotions"
    for needed in (ge / "train.tsv", ge / "dev.tsv"):
        if not needed.is_file():
            raise DatasetError(f"{needed}: not found; --source must be the shared data directory (with emoji/ and goemotions/)")
    catalog = load_emoji_catalog(source)
    stats: Counter = Counter()
    train_ret, train_plain = convert_rows(read_tsv(ge / "train.tsv"), catalog, stats)
    dev_ret, _ = convert_rows(read_tsv(ge / "dev.tsv"), catalog, stats)
    if (ge / "test.tsv").is_file():
        test_ret, _ = convert_rows(read_tsv(ge / "test.tsv"), catalog, stats)
        splits = {"train": train_ret, "validation": dev_ret, "test": test_ret}
        split_rule = "train.tsv -> train, dev.tsv -> validation, test.tsv -> test"
    else:
        rng = random.Random(seed)
        shuffled = sorted(train_ret, key=lambda c: c.id)
        rng.shuffle(shuffled)
        n_val = int(round(len(shuffled) * validation_fraction))
        splits = {"train": shuffled[n_val:], "validation": shuffled[:n_val], "test": dev_ret}
        split_rule = f"train.tsv -> train with {validation_fraction:.0%} carved out as validation (seed {seed}); dev.tsv -> test"
    splits["extra_intention"] = train_plain
    stickers = sorted((e.sticker for e in catalog.values()), key=lambda s: s.id)
    info = DatasetInfo(
        name="goemoji", synthetic=False,
        source="GoEmotions (Demszky et al., 2020; Apache-2.0 / CC BY 4.0) comments with emoji; Noto Emoji images "
               "(Apache-2.0, Google) via emoji-datasource-google (MIT); CLDR annotations via emojibase-data (MIT)",
        details={"split_rule": split_rule, "rules": RULES, "counts": dict(sorted(stats.items()))},
    )
    with atomic.atomic_dir(Path(out), INFO_FILE, "dataset", [source]) as tmp:
        (tmp / "images").mkdir()
        for entry in catalog.values():
            shutil.copyfile(entry.source_image, tmp / entry.sticker.image_file)
        write_dataset_files(tmp, info, stickers, splits)
    return {"stickers": len(stickers), **{k: len(v) for k, v in splits.items()}, **stats}
