"""Contrastive warm-up of a vision encoder built from a config, before the main training.

No pretrained CLIP exists offline, so the ViT starts random. This warm-up aligns each sticker's
mean-pooled projected regions with its attribute descriptions (the mean of its present H^A,
projected by f_des) with a symmetric InfoNCE loss over sticker batches, so that the main training
starts from image features that already carry the descriptions' meaning. Its effect is measured
in docs/training.md.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .encoders import region_features
from .model import IntRA
from .model_inputs import StickerInputs


def pretrain_vision(model: IntRA, stickers: StickerInputs, attr_table: torch.Tensor, steps: int, batch: int,
                    lr: float, temperature: float, seed: int, progress: bool = False) -> list[float]:
    """Run `steps` InfoNCE steps on (image, description) pairs; returns the losses."""
    present = (stickers.attribute_mask.sum(1) > 0) & ~stickers.text_only  # pairs need an image
    usable = [i for i in range(len(present)) if present[i]]
    if not usable or steps <= 0 or not model.attributes:
        return []
    desc = (attr_table * stickers.attribute_mask.unsqueeze(-1)).sum(1) / stickers.attribute_mask.sum(1, keepdim=True).clamp(min=1)
    params = [*model.vision.parameters(), *model.vis_proj.parameters(), *model.des_proj.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    rng = random.Random(f"pretrain-{seed}")
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="vision warm-up", disable=not progress, unit="step"):
        idx = rng.sample(usable, min(batch, len(usable)))
        img = F.normalize(model.vis_proj(region_features(model.vision, stickers.pixels[idx])).mean(1), dim=-1)
        txt = F.normalize(model.des_proj(desc[idx]), dim=-1)
        logits = img @ txt.T / temperature
        target = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
