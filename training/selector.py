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

    def region_weights(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """(S, N) weights m over regions; uniform where no attribute is present."""
        s, n, _ = regions.shape
        if not self.use_attributes:
            return regions.new_full((s, n), 1.0 / n)
        q = self.query(attributes)  # (S, A, k)
        k = self.key(regions)  # (S, N, k)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.key_dim), dim=-1)  # (S, A, N)
        present = attr_mask.to(torch.bool).unsqueeze(-1)  # (S, A, 1)
        m = attn.masked_fill(~present, float("-inf")).amax(dim=1)  # (S, N)
        none = ~present.squeeze(-1).any(dim=1, keepdim=True)  # (S, 1)
        return torch.where(none, torch.full_like(attn[:, 0], 1.0 / n), m)

    def forward(self, regions: torch.Tensor, attributes: torch.Tensor, attr_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised H^R (S, d) from regions h^I (S, N, d), attributes h^A (S, A, d), mask (S, A)."""
        m = self.region_weights(regions, attributes, attr_mask)
        values = self.value(regions)
        return (m.unsqueeze(-1) * values).sum(1) / m.sum(1, keepdim=True)
