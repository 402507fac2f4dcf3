"""An intention stage before retrieval: the text encoder itself trained on many labelled comments.

With `intention_pretrain_epochs` > 0 a fresh run first fine-tunes the top
`intention_pretrain_layers` layers of the text encoder and the intention head on the training
conversations plus the dataset's extra intention-only comments (GoEmoji: all 42.5k GoEmotions
training comments without emoji), then trains retrieval and intention together as usual.
Batches hold comments of similar length (little padding) in a seeded random order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sdk.dataset import Conversation
from sdk.textprep import ContextTokenizer

from .config import TrainConfig
from .encoders import freeze_lower_layers
from .model import IntRA
from .model_inputs import context_batch


def length_batches(convs: Sequence[Conversation], size: int, rng: random.Random) -> list[list[int]]:
    """Indices in batches of similar length, the batches in random order."""
    order = sorted(range(len(convs)), key=lambda i: (sum(len(t.text) for t in convs[i].context), i))
    batches = [order[k:k + size] for k in range(0, len(order), size)]
    rng.shuffle(batches)
    return batches


def pretrain_intention(model: IntRA, tokenizer: ContextTokenizer, convs: Sequence[Conversation], cfg: TrainConfig,
                       added_ids: Sequence[int], progress: bool = True) -> list[float]:
    """Fine-tune the top encoder layers and the head on `convs` (cross-entropy); returns the mean
    loss of each epoch. The encoder is frozen back to `cfg.train_text_layers` afterwards."""
    freeze_lower_layers(model.text, cfg.intention_pretrain_layers)
    text_params = [p for p in model.text.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam([{"params": text_params, "lr": cfg.lr}, {"params": model.head.parameters(), "lr": cfg.head_lr}])
    labels = torch.tensor([c.label_index for c in convs])
    losses = []
    model.train()
    for epoch in range(cfg.intention_pretrain_epochs):
        rng = random.Random(f"{cfg.seed}-intention-{epoch}")
        total, batches = 0.0, length_batches(convs, cfg.intention_pretrain_batch, rng)
        bar = tqdm(batches, desc=f"intention stage {epoch + 1}/{cfg.intention_pretrain_epochs}", disable=not progress,
                   unit="batch")
        for rows in bar:
            ids, mask = context_batch([convs[i] for i in rows], tokenizer, False)
            loss = F.cross_entropy(model.head(model.encode_text(ids, mask)), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        losses.append(total / max(1, len(batches)))
    for p in model.text.parameters():  # back to what the run trains (-1: every layer)
        p.requires_grad_(True)
    freeze_lower_layers(model.text, cfg.train_text_layers, added_ids)
    return losses
