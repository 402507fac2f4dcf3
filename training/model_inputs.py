"""A dataset turned into model inputs: sticker pixels and attribute texts, conversation batches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sdk.context import own_turns
from sdk.dataset import Conversation, Dataset
from sdk.imageprep import ImageSettings, load_pixels
from sdk.labels import LABELS
from sdk.sticker_texts import Slots, slot_mask, slot_table, sticker_slots
from sdk.textprep import ContextTokenizer


@dataclass
class StickerInputs:
    pixels: torch.Tensor  # (S, 3, H, W); zeros for a text-only sticker
    slots: list[Slots]  # per sticker, (slot, text) pairs by sdk.sticker_texts' rule
    attribute_mask: torch.Tensor  # (S, A) float
    text_only: torch.Tensor  # (S,) bool: stickers with descriptions and no image
    # (S, R, C) region features of a frozen vision encoder, computed once (see `freeze_regions`)
    raw_regions: torch.Tensor | None = None

    def regions_of(self, rows) -> torch.Tensor | None:
        return self.raw_regions[rows] if self.raw_regions is not None else None

    def text_only_of(self, rows) -> torch.Tensor | None:
        """The text-only marks of `rows`, None when the catalog has no text-only sticker."""
        return self.text_only[rows] if bool(self.text_only.any()) else None


@torch.no_grad()
def freeze_regions(stickers: StickerInputs, vision, batch: int = 64) -> None:
    """Compute a frozen vision encoder's regions of every sticker once (pretrained EfficientNet:
    seconds instead of a forward pass per training step)."""
    from .encoders import region_features

    stickers.raw_regions = torch.cat([region_features(vision, stickers.pixels[k:k + batch])
                                      for k in range(0, len(stickers.pixels), batch)])


def sticker_inputs(ds: Dataset, settings: ImageSettings) -> StickerInputs:
    blank = np.zeros((3, settings.image_size, settings.image_size), np.float32)
    paths = [ds.image_path(s) for s in ds.stickers]
    pixels = np.stack([blank if path is None else load_pixels(path, settings) for path in paths])
    slots = [sticker_slots(s.attributes, s.descriptions, s.image is not None) for s in ds.stickers]
    text_only = torch.tensor([s.image is None for s in ds.stickers], dtype=torch.bool)
    return StickerInputs(torch.from_numpy(pixels), slots, torch.from_numpy(slot_mask(slots)), text_only)


def sticker_labels(ds: Dataset, split: str = "train") -> tuple[list[int], str]:
    """Each sticker's intention label id (-1 unknown) and the rule that gave it (see
    :meth:`sdk.dataset.Dataset.sticker_labels`, which packs built from a dataset use too)."""
    return ds.sticker_labels(split)


def encode_attribute_table(model, tokenizer: ContextTokenizer, slots: Sequence[Slots], batch: int = 256) -> torch.Tensor:
    """H^A for every (sticker, slot): (S, A, h), each slot the mean of its texts' embeddings
    (sdk.sticker_texts.slot_table, as the SDK builds it), zeros where empty; no gradient."""
    was_training = model.training
    model.eval()

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for k in range(0, len(texts), batch):
            ids, mask = tokenizer.encode_texts(texts[k:k + batch])
            out.append(model.encode_text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
        return np.concatenate(out)

    with torch.no_grad():
        table, _ = slot_table(slots, embed, model.label_table.shape[1])
    model.train(was_training)
    return torch.from_numpy(table)


def refresh_label_table(model, tokenizer: ContextTokenizer) -> None:
    was_training = model.training
    model.eval()
    ids, mask = tokenizer.encode_texts(list(LABELS))
    model.refresh_label_table(torch.from_numpy(ids), torch.from_numpy(mask))
    model.train(was_training)


def context_batch(convs: Sequence[Conversation], tokenizer: ContextTokenizer, use_knowledge: bool,
                  knowledge_dropout: float = 0.0, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and mask for conversations; knowledge dropped with probability `knowledge_dropout`."""
    knowledge = []
    for c in convs:
        keep = use_knowledge and c.knowledge and not (rng is not None and rng.random() < knowledge_dropout)
        knowledge.append(c.knowledge if keep else None)
    own = [own_turns([t.speaker for t in c.context]) for c in convs]  # as the SDK reads (speaker, text) turns
    ids, mask = tokenizer.encode_contexts([[t.text for t in c.context] for c in convs], knowledge, own)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def all_texts(ds: Dataset) -> list[str]:
    """The texts a tokenizer is fitted on: training contexts and knowledge, descriptions, labels.

    Validation and test texts are left out, so their [UNK] rate is an honest measurement.
    """
    texts = list(LABELS)
    for name in ("train", "extra_intention"):
        for c in ds.splits.get(name, ()):
            texts.extend(t.text for t in c.context)
            if c.knowledge:
                texts.extend(v for vs in c.knowledge.values() for v in vs)
    texts.extend(v for s in ds.stickers for v in (*s.attributes.values(), *s.descriptions))
    return texts
