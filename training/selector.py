"""The relation-aware selector: attribute-guided attention over image regions (DESIGN.md step 7).

For each attribute j: a_j = softmax((h^A_j W^Q)(h^I W^K)^T / sqrt(d_k)) over the N regions; the
relation score of a region is m = max_j a_j over the attributes that are present (masked ones are
excluded); H^R = sum_i m_i (h^I_i W^V) / sum_i m_i. With every attribute masked, or with
attributes switched off (the ablation), H^R is the mean of h^I W^V.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RelationSelector(nn.Module):
    def __init__(self, dim: int, key_dim: int, use_attributes: bool = True) -> None:
        super().__init__()
        self.use_attributes = use_attributes
        self.key_dim = key_dim
        self.value = nn.Linear(dim, dim, bias=False)
        if use_attributes:
            self.query = nn.Linear(dim, key_dim, bias=False)
            self.key = nn.Linear(dim, key_dim, bias=False)

    def attention(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """(S, A, N) a_j over regions per attribute, -inf where the attribute is absent."""
        q = self.query(attributes)  # (S, A, k)
        k = self.key(regions)  # (S, N, k)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.key_dim), dim=-1)
        return attn.masked_fill(~attr_mask.to(torch.bool).unsqueeze(-1), float("-inf"))

    def region_weights(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """(S, N) weights m over regions; uniform where no attribute is present."""
        s, n, _ = regions.shape
        if not self.use_attributes:
            return regions.new_full((s, n), 1.0 / n)
        m = self.attention(regions, attributes, attr_mask).amax(dim=1)  # (S, N)
        none = ~attr_mask.to(torch.bool).any(dim=1, keepdim=True)  # (S, 1)
        return torch.where(none, torch.full_like(m, 1.0 / n), m)

    def attribute_share(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """(S, A) each attribute's share of the selector's weight: the part of sum_i m_i over the
        regions where that attribute's attention is the maximum (all zero without attributes)."""
        if not self.use_attributes:
            return regions.new_zeros(regions.shape[0], attributes.shape[1])
        attn = self.attention(regions, attributes, attr_mask)
        m = attn.amax(dim=1, keepdim=True)  # (S, 1, N)
        winner = (attn == m) & torch.isfinite(attn)
        share = (winner.to(regions.dtype) * m.clamp(min=0.0)).sum(-1)  # -inf rows (nothing present) give 0
        return share / share.sum(-1, keepdim=True).clamp(min=1e-12)

    def forward(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised H^R (S, d) from regions h^I (S, N, d), attributes h^A (S, A, d), mask (S, A)."""
        m = self.region_weights(regions, attributes, attr_mask)
        values = self.value(regions)
        return (m.unsqueeze(-1) * values).sum(1) / m.sum(1, keepdim=True)
