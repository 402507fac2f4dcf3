"""Retrieval losses over a (queries x candidate stickers) cosine matrix."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_retrieval(scores: torch.Tensor, positive: torch.Tensor, negative_mask: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over queries of sum over negatives of max(0, margin + cos_neg - cos_pos).

    `scores` (B, U) cosines, `positive` (B,) column of each query's gold sticker, `negative_mask`
    (B, U) true for the columns that are negatives of that query (in-batch and sampled).
    """
    pos = scores.gather(1, positive[:, None])
    hinge = F.relu(margin + scores - pos) * negative_mask.to(scores.dtype)
    return hinge.sum(1).mean()


def info_nce(scores: torch.Tensor, positive: torch.Tensor, negative_mask: torch.Tensor, temperature: float,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the gold column against the negatives (CLIP-style), at `temperature`;
    `bias` (U,) is added to every row's logits (a log prior: logit adjustment)."""
    keep = negative_mask.clone()
    keep[torch.arange(len(positive)), positive] = True
    logits = scores / temperature
    if bias is not None:
        logits = logits + bias[None, :]
    logits = logits.masked_fill(~keep, float("-inf"))
    return F.cross_entropy(logits, positive)
