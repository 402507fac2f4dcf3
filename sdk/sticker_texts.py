"""Which text of a sticker feeds which slot of the sticker side: the one rule the trainer and the
SDK share.

A sticker is an image with optional attribute descriptions (:data:`sdk.labels.ATTRIBUTES`), or
**text only**: descriptions and no image (a kaomoji like ``(╯°□°)╯︵ ┻━┻``, a bracketed emoticon
like ``[捂脸]``, a catalog whose images an app does not ship).

- An image sticker puts each attribute in its own slot: the relation-aware selector attends to the
  image's regions once per attribute.
- A text-only sticker puts every text it has (its attributes, then its descriptions) in slot 0,
  where they are averaged, and reaches the selector with all-zero regions. The selector then
  takes the descriptions-only path: the projected mean of the descriptions (the projection is
  linear, so the mean of the embeddings projects to the mean of the projected descriptions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import IntraError
from .labels import ATTRIBUTES

#: at most this many descriptions per sticker (a sticker is described, not a corpus)
MAX_DESCRIPTIONS = 256
#: and at most this many characters each
MAX_DESCRIPTION_CHARS = 2_000
Slots = list[tuple[int, str]]


def check_descriptions(value: Any, where: str, error: type[IntraError]) -> tuple[str, ...]:
    """A list of descriptions (strings; blank ones dropped), bounded; `error` naming `where` otherwise."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise error(f"{where}: field 'descriptions' must be a list of strings, got {type(value).__name__}")
    if len(value) > MAX_DESCRIPTIONS:
        raise error(f"{where}: field 'descriptions' has {len(value)} entries; at most {MAX_DESCRIPTIONS}")
    out = []
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise error(f"{where}: field 'descriptions[{i}]' must be a string, got {type(text).__name__}")
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise error(f"{where}: field 'descriptions[{i}]' has {len(text):,} characters; at most {MAX_DESCRIPTION_CHARS:,}")
        if text.strip():
            out.append(text)
    return tuple(out)


def check_text_only(has_image: bool, attributes: Mapping[str, str], descriptions: Sequence[str], where: str,
                    error: type[IntraError]) -> None:
    """`error` for a sticker with neither an image nor any text, or with descriptions and an image."""
    if has_image and descriptions:
        raise error(f"{where}: field 'descriptions' is for stickers without an image; describe an image with "
                    f"'attributes' ({', '.join(ATTRIBUTES)})")
    if not has_image and not attributes and not descriptions:
        raise error(f"{where}: a sticker needs an image or at least one description")


def sticker_slots(attributes: Mapping[str, str], descriptions: Sequence[str], has_image: bool) -> Slots:
    """(slot, text) pairs of one sticker, by the rule of this module."""
    if has_image:
        return [(j, attributes[a]) for j, a in enumerate(ATTRIBUTES) if attributes.get(a, "").strip()]
    return [(0, t) for t in (*(attributes[a] for a in ATTRIBUTES if attributes.get(a, "").strip()), *descriptions)]


def slot_mask(rows: Sequence[Slots]) -> np.ndarray:
    """(S, A) 1.0 where a slot holds a text."""
    mask = np.zeros((len(rows), len(ATTRIBUTES)), np.float32)
    for i, row in enumerate(rows):
        for j, _ in row:
            mask[i, j] = 1.0
    return mask


def slot_table(rows: Sequence[Slots], embed: Callable[[list[str]], np.ndarray], hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """((S, A, hidden) the mean embedding of each slot's texts, zeros where empty; (S, A) mask).

    `embed` maps a list of texts to their (n, hidden) pooled embeddings."""
    flat = [(i, j, t) for i, row in enumerate(rows) for j, t in row]
    table = np.zeros((len(rows), len(ATTRIBUTES), hidden), np.float32)
    mask = slot_mask(rows)
    if flat:
        emb = np.asarray(embed([t for _, _, t in flat]), np.float32)
        counts = np.zeros((len(rows), len(ATTRIBUTES)), np.float32)
        for (i, j, _), v in zip(flat, emb):
            table[i, j] += v
            counts[i, j] += 1.0
        table /= np.maximum(counts, 1.0)[..., None]
    return table, mask
