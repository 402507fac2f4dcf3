"""Score conversations against every sticker of a catalog with a trained model (no gradient)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sdk.dataset import Conversation
from sdk.textprep import ContextTokenizer

from .model import IntRA
from .model_inputs import StickerInputs, context_batch, encode_attribute_table, refresh_label_table


@torch.no_grad()
def sticker_matrix(model: IntRA, tokenizer: ContextTokenizer, stickers: StickerInputs, batch: int = 64,
                   attr_table: torch.Tensor | None = None) -> torch.Tensor:
    """(S, d) normalised sticker vectors H^R; `attr_table` reuses H^A computed by a frozen encoder."""
    model.eval()
    table = attr_table
    if table is None and model.attributes:
        table = encode_attribute_table(model, tokenizer, stickers.slots)
    out = []
    for k in range(0, len(stickers.pixels), batch):
        sl = slice(k, k + batch)
        out.append(model.sticker_vectors(stickers.pixels[sl], table[sl] if table is not None else None, stickers.attribute_mask[sl],
                                         stickers.regions_of(sl), stickers.text_only_of(sl)))
    return torch.cat(out)


@torch.no_grad()
def query_matrix(model: IntRA, tokenizer: ContextTokenizer, convs: Sequence[Conversation], mode: str | None = None,
                 batch: int = 64) -> tuple[np.ndarray | None, torch.Tensor]:
    """(intention logits (Q, L) or None, normalised queries (Q, d))."""
    model.eval()
    logits, queries = [], []
    for k in range(0, len(convs), batch):
        ids, mask = context_batch(convs[k:k + batch], tokenizer, model.cfg.use_knowledge)
        lg, q = model.query(model.encode_text(ids, mask), mode)
        queries.append(q)
        if lg is not None:
            logits.append(lg)
    return (torch.cat(logits).numpy() if logits else None), torch.cat(queries)


def score_conversations(model: IntRA, tokenizer: ContextTokenizer, stickers: StickerInputs, convs: Sequence[Conversation],
                        mode: str | None = None, attr_table: torch.Tensor | None = None,
                        text_frozen: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(Q, S) cosine scores and the intention logits (None without an intention head).

    With `text_frozen` the label table is current already and `attr_table` is H^A from the frozen
    encoder: neither is recomputed (they dominate the cost of validating a cached epoch).
    """
    if not text_frozen:
        refresh_label_table(model, tokenizer)
    vectors = sticker_matrix(model, tokenizer, stickers, attr_table=attr_table)
    logits, queries = query_matrix(model, tokenizer, convs, mode)
    return (queries @ vectors.T).numpy(), logits
