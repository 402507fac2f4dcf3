"""StickerQueries: human-written search queries for real stickers, as a query -> sticker dataset.

Built from ``../shared/data/sticker-queries/{zh,en}.csv`` (Chee et al., 2025; MIT), rows
``sticker_id,labeled_queries``. The images were not published, so every sticker is text only
(:mod:`sdk.sticker_texts`): it is described by its queries. Rules, stated in ``dataset.json``:

- queries are split on commas (ASCII and full-width), trimmed, and de-duplicated per sticker
  (case and spacing ignored), so that a held-out query never has a copy among the descriptions;
- a sticker with at least three queries has one, drawn with the seed, held out as its test query
  and another as its validation query; the rest are its descriptions and its training contexts
  (one context per query, that sticker gold);
- a sticker with one or two queries is never a test or validation answer: its queries are its
  descriptions and training contexts, and it stays in the catalog as a distractor;
- no intention label exists for a query; none is written.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from pathlib import Path

from sdk import atomic
from sdk.dataset import INFO_FILE, Conversation, DatasetInfo, Sticker, Turn, write_dataset_files
from sdk.errors import DatasetError

LANGUAGES = ("zh", "en")
FOLDER = "sticker-queries"
#: at least this many queries for a sticker to give a test and a validation query
MIN_HELD = 3
SPEAKER = "user"
RULES = {
    "queries": "split on commas (ASCII and full-width), trimmed, de-duplicated per sticker ignoring case and spacing",
    "splits": f"a sticker with at least {MIN_HELD} queries gives one seeded query to test and one to validation; the "
              "rest are its descriptions and training contexts",
    "few": f"a sticker with fewer than {MIN_HELD} queries is never a test or validation answer: its queries are its "
           "descriptions and training contexts, and it stays in the catalog as a distractor",
    "images": "the images were not published: every sticker is text only, described by its queries",
    "labels": "queries carry no intention label; none is written",
}


def split_queries(field: str) -> list[str]:
    """The distinct queries of one ``labeled_queries`` cell, in order."""
    out, seen = [], set()
    for part in field.replace("，", ",").split(","):
        query = " ".join(part.split())
        key = query.casefold()
        if query and key not in seen:
            seen.add(key)
            out.append(query)
    return out


def read_rows(path: Path) -> list[tuple[str, list[str]]]:
    """(sticker id, its queries) per row of a StickerQueries csv; DatasetError names the line at fault."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found; --source must be the shared data directory (with {FOLDER}/)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"sticker_id", "labeled_queries"} <= set(reader.fieldnames):
        raise DatasetError(f"{path}: expected the columns sticker_id,labeled_queries; got {reader.fieldnames}")
    rows, seen = [], set()
    for row in reader:
        where = f"{path}:{reader.line_num}"
        sid = Path((row["sticker_id"] or "").strip()).stem
        if not sid:
            raise DatasetError(f"{where}: field 'sticker_id' is empty")
        if sid in seen:
            raise DatasetError(f"{where}: field 'sticker_id': {sid!r} appears twice")
        seen.add(sid)
        queries = split_queries(row["labeled_queries"] or "")
        if queries:
            rows.append((sid, queries))
    if not rows:
        raise DatasetError(f"{path}: no sticker with a query")
    return rows


def _context(cid: str, query: str, sticker_id: str) -> Conversation:
    return Conversation(cid, (Turn(SPEAKER, query),), None, sticker_id)


def make_splits(rows: list[tuple[str, list[str]]], lang: str, seed: int,
                stats: Counter) -> tuple[list[Sticker], dict[str, list[Conversation]]]:
    """The catalog (one text-only sticker per row) and the train, validation and test splits."""
    rng = random.Random(f"sticker-queries-{lang}-{seed}")
    stickers: list[Sticker] = []
    splits: dict[str, list[Conversation]] = {"train": [], "validation": [], "test": []}
    for sid, queries in rows:
        order = rng.sample(queries, len(queries))
        if len(order) >= MIN_HELD:
            test, val, rest = order[0], order[1], order[2:]
            splits["test"].append(_context(f"{sid}-test", test, sid))
            splits["validation"].append(_context(f"{sid}-validation", val, sid))
            stats["stickers_with_held_queries"] += 1
        else:
            rest = order
            stats["stickers_distractors_only"] += 1
        rest = sorted(rest, key=queries.index)  # descriptions in the source's order
        stickers.append(Sticker(sid, None, descriptions=tuple(rest), language=lang))
        splits["train"].extend(_context(f"{sid}-train-{k}", q, sid) for k, q in enumerate(rest))
        stats["queries"] += len(queries)
    return stickers, splits


def build(source: Path | str, out: Path | str, lang: str = "zh", seed: int = 0) -> dict[str, int]:
    """Write the StickerQueries dataset of `lang` from the shared data at `source`; return counts."""
    if lang not in LANGUAGES:
        raise DatasetError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    source = Path(source)
    atomic.check_output(Path(out), INFO_FILE, "dataset", [source])  # refuse before reading anything
    stats: Counter = Counter()
    stickers, splits = make_splits(read_rows(source / FOLDER / f"{lang}.csv"), lang, seed, stats)
    info = DatasetInfo(
        name=f"sticker-queries-{lang}", synthetic=False,
        source="StickerQueries (Chee et al., 2025, 'Small Stickers, Big Meanings', arXiv 2506.01668; MIT)",
        notes="query -> sticker retrieval; text-only stickers described by their other queries",
        details={"rules": RULES, "language": lang, "seed": seed, "counts": dict(sorted(stats.items()))},
    )
    with atomic.atomic_dir(Path(out), INFO_FILE, "dataset", [source]) as tmp:
        write_dataset_files(tmp, info, stickers, splits)
    return {"stickers": len(stickers), **{k: len(v) for k, v in splits.items()}, **stats}
