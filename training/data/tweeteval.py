"""TweetEval emoji: real tweets, each posted with exactly one of 20 emoji, as a retrieval dataset.

Built from ``../shared/data`` (see its README): the tweet is the context, its emoji the gold
sticker. Rules, stated in ``dataset.json`` and in every report:

- the leak: the source text still holds U+FE0F (and other emoji residue) where the emoji was cut
  out; every context is cleaned of variation selectors, zero-width joiners, skin-tone modifiers,
  keycap marks, tag characters and any remaining emoji cluster before it is written;
- splits: ``train_text.txt`` -> train with a seeded fraction carved out as validation;
  ``val_text.txt`` -> test. Where ``test_text.txt`` exists it becomes the test split and
  ``val_text.txt`` the validation split;
- tweets carry no intention label, so none is written (no label is invented); GoEmotions'
  labelled comments without emoji are the ``extra_intention`` split, which ``--extra-intention``
  trains the intention head on;
- catalog ``full``: all 646 emoji of the shared catalog; ``task``: the 20 task emoji only;
- held-out emoji (``held_out``): their tweets are removed from train and validation, and the test
  split keeps only the tweets whose gold is one of them (a pack the model has never seen).
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from sdk import atomic
from sdk.dataset import INFO_FILE, Conversation, DatasetInfo, Turn, write_dataset_files
from sdk.errors import DatasetError

from .goemoji import EmojiEntry, convert_rows, load_emoji_catalog, normalize_key, read_tsv

CATALOGS = ("full", "task")
TASK = "tweeteval-emoji"
# What a context may not keep of the removed emoji: variation selectors, ZWJ, skin tones, the
# keycap mark, tag characters (flag sequences); then any emoji cluster still in the text
_RESIDUE = regex.compile(r"[\ufe0e\ufe0f\u200d\u20e3\U0001F3FB-\U0001F3FF\U000E0020-\U000E007F]")
_EMOJI = regex.compile(r"\X")
_IS_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")

RULES = {
    "leak": "every context is cleaned of U+FE0F/U+FE0E, ZWJ, skin tones, keycap and tag characters and any emoji cluster "
            "(the source keeps U+FE0F where the emoji was cut out: a label leak)",
    "labels": "tweets carry no intention label; none is written (stickers have no label either, so label-based metrics "
              "count the gold sticker only)",
    "dropped": "tweets empty once cleaned are dropped and counted",
}


def clean_context(text: str) -> str:
    """`text` without emoji residue or emoji, whitespace collapsed."""
    text = _RESIDUE.sub(" ", text)
    return " ".join(_EMOJI.sub(lambda m: " " if _IS_EMOJI.search(m.group()) else m.group(), text).split())


@dataclass(frozen=True)
class TaskEmoji:
    """One of the task's labels: its id, its emoji and its entry in the catalog."""

    label_id: int
    emoji: str
    name: str
    entry: EmojiEntry


def read_mapping(path: Path, catalog: dict[str, EmojiEntry]) -> list[TaskEmoji]:
    """mapping.txt's labels in id order, each matched to the catalog; errors name file and line."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0].strip().isdigit():
            raise DatasetError(f"{path}:{number}: expected 'label id<TAB>emoji<TAB>name', got {line!r}")
        key = normalize_key(parts[1].strip())
        if key not in catalog:
            raise DatasetError(f"{path}:{number}: emoji {parts[1]!r} is not in the shared catalog (emoji/emoji.json)")
        out.append(TaskEmoji(int(parts[0]), parts[1].strip(), parts[2].strip("_ "), catalog[key]))
    if [t.label_id for t in out] != list(range(len(out))):
        raise DatasetError(f"{path}: label ids must be 0..{len(out) - 1} in order")
    return out


def _lines(path: Path) -> list[str]:
    """The file's lines split on newline alone (a tweet may hold other line separators)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_split(directory: Path, name: str, n_labels: int) -> list[tuple[str, int]]:
    """(raw text, label id) pairs of ``{name}_text.txt`` / ``{name}_labels.txt``."""
    text_path, label_path = directory / f"{name}_text.txt", directory / f"{name}_labels.txt"
    for p in (text_path, label_path):
        if not p.is_file():
            raise DatasetError(f"{p}: not found; --source must be the shared data directory (with tweeteval-emoji/)")
    texts, labels = _lines(text_path), _lines(label_path)
    if len(texts) != len(labels):
        raise DatasetError(f"{text_path}: {len(texts)} tweets but {label_path.name} has {len(labels)} labels")
    out = []
    for number, (text, label) in enumerate(zip(texts, labels), start=1):
        if not label.strip().isdigit() or not 0 <= int(label) < n_labels:
            raise DatasetError(f"{label_path}:{number}: label {label!r} is not an id in 0..{n_labels - 1}")
        out.append((text, int(label)))
    return out


def to_conversations(rows: Sequence[tuple[str, int]], split: str, task: list[TaskEmoji], stats: Counter) -> list[Conversation]:
    """Cleaned tweets as unlabelled retrieval conversations; empty ones are dropped and counted."""
    out = []
    for i, (text, label) in enumerate(rows):
        context = clean_context(text)
        if "\ufe0f" in text:
            stats[f"{split}_had_fe0f"] += 1
        if not context:
            stats[f"dropped_empty_{split}"] += 1
            continue
        out.append(Conversation(id=f"te-{split}-{i}", context=(Turn("user", context),), label=None,
                                sticker_id=task[label].entry.sticker.id))
    return out


def choose_held_out(task: list[TaskEmoji], count: int, seed: int) -> list[str]:
    """`count` task emoji's sticker ids drawn with `seed` (the same seed draws the same ones)."""
    if not 0 <= count < len(task):
        raise DatasetError(f"--hold-out must be in 0..{len(task) - 1}, got {count}")
    return sorted(t.entry.sticker.id for t in random.Random(f"held-out-{seed}").sample(task, count))


def make_splits(source: Path, task: list[TaskEmoji], seed: int, validation_fraction: float,
                stats: Counter) -> tuple[dict[str, list[Conversation]], str]:
    """The train / validation / test conversations and the rule that made them."""
    te = source / "tweeteval-emoji"
    train = to_conversations(read_split(te, "train", len(task)), "train", task, stats)
    val = to_conversations(read_split(te, "val", len(task)), "val", task, stats)
    if (te / "test_text.txt").is_file():
        test = to_conversations(read_split(te, "test", len(task)), "test", task, stats)
        return {"train": train, "validation": val, "test": test}, "train_text -> train, val_text -> validation, test_text -> test"
    shuffled = list(train)
    random.Random(seed).shuffle(shuffled)
    n_val = int(round(len(shuffled) * validation_fraction))
    rule = f"train_text -> train with {validation_fraction:.0%} carved out as validation (seed {seed}); val_text -> test"
    return {"train": shuffled[n_val:], "validation": shuffled[:n_val], "test": val}, rule


def hold_out(splits: dict[str, list[Conversation]], held: Sequence[str]) -> dict[str, list[Conversation]]:
    """Held-out stickers' tweets removed from train and validation; test keeps only theirs."""
    held_set = set(held)
    return {"train": [c for c in splits["train"] if c.sticker_id not in held_set],
            "validation": [c for c in splits["validation"] if c.sticker_id not in held_set],
            "test": [c for c in splits["test"] if c.sticker_id in held_set]}


def build(source: Path | str, out: Path | str, catalog: str = "full", seed: int = 0, validation_fraction: float = 0.1,
          held_out: int = 0, extra_intention: bool = True) -> dict[str, int]:
    """Write the TweetEval emoji dataset directory `out` from the shared data at `source`; return counts."""
    source = Path(source)
    if catalog not in CATALOGS:
        raise DatasetError(f"--catalog must be one of {', '.join(CATALOGS)}, got {catalog!r}")
    atomic.check_output(Path(out), INFO_FILE, "dataset", [source])  # refuse before reading anything
    emoji = load_emoji_catalog(source)
    mapping = source / "tweeteval-emoji" / "mapping.txt"
    if not mapping.is_file():
        raise DatasetError(f"{mapping}: not found; --source must be the shared data directory (with tweeteval-emoji/)")
    task = read_mapping(mapping, emoji)
    stats: Counter = Counter()
    splits, split_rule = make_splits(source, task, seed, validation_fraction, stats)
    held = choose_held_out(task, held_out, seed)
    if held:
        splits = hold_out(splits, held)
        split_rule += f"; held out of train and validation, and alone in test: {', '.join(held)}"
    entries = [t.entry for t in task] if catalog == "task" else list(emoji.values())
    if extra_intention:
        train_tsv = source / "goemotions" / "train.tsv"
        if not train_tsv.is_file():
            raise DatasetError(f"{train_tsv}: not found; the extra intention split is GoEmotions' comments without emoji")
        splits["extra_intention"] = convert_rows(read_tsv(train_tsv), emoji, Counter())[1]
    stickers = sorted((e.sticker for e in entries), key=lambda s: s.id)
    info = DatasetInfo(
        name=TASK + ("" if catalog == "full" else "-task") + (f"-heldout{held_out}" if held else ""), synthetic=False,
        source="TweetEval emoji (Barbieri et al., 2020; SemEval-2018 Task 2, Barbieri et al., 2018); Noto Emoji images "
               "(Apache-2.0, Google) via emoji-datasource-google (MIT); CLDR annotations via emojibase-data (MIT)"
               + ("; extra intention comments from GoEmotions (Demszky et al., 2020)" if extra_intention else ""),
        details={"split_rule": split_rule, "rules": RULES, "catalog": catalog, "held_out": held,
                 "task_labels": [{"id": t.label_id, "emoji": t.emoji, "name": t.name, "sticker_id": t.entry.sticker.id}
                                 for t in task],
                 "counts": dict(sorted(stats.items()))},
    )
    with atomic.atomic_dir(Path(out), INFO_FILE, "dataset", [source]) as tmp:
        (tmp / "images").mkdir()
        for entry in entries:
            shutil.copyfile(entry.source_image, tmp / entry.sticker.image_file)
        write_dataset_files(tmp, info, stickers, splits)
    return {"stickers": len(stickers), **{k: len(v) for k, v in splits.items()}, **stats}


def task_sticker_ids(info_details: Mapping[str, Any]) -> list[str]:
    """The sticker id of each task label, in label-id order, from a dataset's ``task_labels``."""
    try:
        return [t["sticker_id"] for t in sorted(info_details["task_labels"], key=lambda t: t["id"])]
    except (KeyError, TypeError):
        raise DatasetError("dataset.json has no 'task_labels': not a TweetEval emoji dataset (intra data tweeteval)") from None
