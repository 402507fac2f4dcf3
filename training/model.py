"""Int-RA in PyTorch: knowledge-enhanced intention predictor, attribute-aware sticker side, selector.

Text side: H^T = pooled TextEncoder(context [SEP] knowledge); logits = W H^T + b; the label table
H^Y = TextEncoder(label names) is recomputed whenever the text encoder may have changed. The query
is, by mode: `paper` f_txt(H^Y[argmax]) (the gold label while training: teacher forcing),
`soft` sum_k p_k f_txt(H^Y_k), `fused` soft + f_ctx(H^T). Without intention (ablation, and the
dual encoder) the query is f_ctx(H^T). Sticker side: h^I = f_vis(ViT regions), h^A = f_des(H^A);
the selector pools h^I into H^R. Score = cos(query, H^R).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sdk.labels import ATTRIBUTES, CONTEXT_MODE, LABELS

from .config import ConfigError, TrainConfig
from .encoders import hidden_size, pooled_text, region_features
from .selector import RelationSelector


def has_image(regions: torch.Tensor) -> torch.Tensor:
    """(S,) True where a sticker's projected regions are not all zero (an image was seen)."""
    return regions.abs().amax(dim=(1, 2)) > 0


class IntRA(nn.Module):
    label_table: torch.Tensor  # a registered buffer: H^Y, the label names through the text encoder

    def __init__(self, cfg: TrainConfig, text: nn.Module, text_config: dict[str, Any], vision: nn.Module, vision_config: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.text = text
        self.vision = vision
        h_t, h_v, d = hidden_size(text_config), hidden_size(vision_config), cfg.dim
        self.intention = cfg.use_intention and not cfg.dual_encoder
        if self.intention:
            self.head = nn.Linear(h_t, len(LABELS))
            self.label_proj = nn.Linear(h_t, d)
        if not self.intention or cfg.mode == "fused":
            self.ctx_proj = nn.Linear(h_t, d)
        self.vis_proj = nn.Linear(h_v, d)
        self.attributes = cfg.use_attributes and not cfg.dual_encoder
        self.use_image = cfg.use_image or not self.attributes
        if self.attributes:
            self.des_proj = nn.Linear(h_t, d)
        self.selector = RelationSelector(d, cfg.key_dim, use_attributes=self.attributes)
        self.register_buffer("label_table", torch.zeros(len(LABELS), h_t), persistent=True)

    # ------------------------------------------------------------------ text side
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return pooled_text(self.text, input_ids, attention_mask, self.cfg.pooling)

    def text_or_cached(self, pooled: torch.Tensor | None, ids: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        """`pooled` when the frozen encoder's outputs are cached, else the encoder's output for `ids`."""
        if pooled is not None:
            return pooled
        if ids is None or mask is None:
            raise ValueError("either pooled text features or token ids with their mask are needed")
        return self.encode_text(ids, mask)

    @torch.no_grad()
    def refresh_label_table(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        """Recompute H^Y from the label names with the current text encoder."""
        self.label_table.copy_(self.encode_text(ids, mask))

    @property
    def modes(self) -> tuple[str, ...]:
        """The query modes this model serves: the paper's argmax label and the probability-weighted
        labels, plus the projected context when it was trained fused; CONTEXT_MODE without a head."""
        if not self.intention:
            return (CONTEXT_MODE,)
        return ("paper", "soft", "fused") if self.cfg.mode == "fused" else ("paper", "soft")

    @property
    def main_mode(self) -> str:
        return self.cfg.mode if self.intention else CONTEXT_MODE

    def queries(self, h_t: torch.Tensor, modes: Sequence[str], label_vectors: torch.Tensor | None = None,
                gold: torch.Tensor | None = None) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """(intention logits or None, {mode: L2-normalised query (B, d)}): the one definition of
        every query mode, which training, evaluation and the exported graph all call.

        `label_vectors`: the projected label table (L, d) when precomputed; `gold`: teacher labels
        for the paper mode in training.
        """
        unknown = [m for m in modes if m not in self.modes]
        if unknown:
            raise ConfigError(f"query mode(s) {', '.join(unknown)} not served by this model (it has {', '.join(self.modes)})")
        if not self.intention:
            return None, {CONTEXT_MODE: F.normalize(self.ctx_proj(h_t), dim=-1)}
        logits = self.head(h_t)
        labels = self.label_proj(self.label_table) if label_vectors is None else label_vectors  # (L, d)
        soft = torch.softmax(logits, -1) @ labels
        made = {"paper": lambda: labels[logits.argmax(-1) if gold is None else torch.where(gold >= 0, gold, logits.argmax(-1))],
                "soft": lambda: soft, "fused": lambda: soft + self.ctx_proj(h_t)}
        return logits, {m: F.normalize(made[m](), dim=-1) for m in modes}

    def query(self, h_t: torch.Tensor, mode: str | None = None, gold: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(intention logits or None, L2-normalised query (B, d)) in `mode` (default: the run's own)."""
        mode = mode or self.main_mode
        logits, qs = self.queries(h_t, [mode], gold=gold)
        return logits, qs[mode]

    # ------------------------------------------------------------------ sticker side
    def sticker_vectors(self, pixel_values: torch.Tensor, attr_emb: torch.Tensor | None, attr_mask: torch.Tensor | None,
                        raw_regions: torch.Tensor | None = None, text_only: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised H^R (S, d) from pixels (S, 3, H, W) and attribute embeddings H^A (S, A, h_t);
        `raw_regions` replaces the vision encoder's output when it is frozen and precomputed;
        `text_only` (S,) marks stickers shown without their image (their regions are zeroed, as
        the SDK feeds a text-only sticker)."""
        regions = self.projected_regions(pixel_values, raw_regions, text_only)
        s = regions.shape[0]
        if self.attributes:
            if attr_emb is None or attr_mask is None:
                raise ValueError("this model reads attribute descriptions: attr_emb and attr_mask are needed")
            attrs, mask = self.des_proj(attr_emb), attr_mask
        else:
            attrs = regions.new_zeros(s, len(ATTRIBUTES), regions.shape[-1])
            mask = regions.new_zeros(s, len(ATTRIBUTES))
        return F.normalize(self.pool_sticker(regions, attrs, mask), dim=-1)

    def projected_regions(self, pixel_values: torch.Tensor, raw_regions: torch.Tensor | None,
                          text_only: torch.Tensor | None) -> torch.Tensor:
        """f_vis of each sticker's image regions (S, N, d); all zeros for a text-only sticker,
        whose image is never run through the vision encoder."""
        def project(rows: torch.Tensor) -> torch.Tensor:
            raw = raw_regions[rows] if raw_regions is not None else region_features(self.vision, pixel_values[rows])
            return self.vis_proj(raw)

        if text_only is None or not bool(text_only.any()):
            return project(torch.arange(len(pixel_values)))
        shown = torch.nonzero(~text_only.to(torch.bool)).flatten()
        if len(shown) == 0:
            with torch.no_grad():  # only the shape of one image's regions is needed
                shape = project(torch.arange(1)).shape[1:]
            return pixel_values.new_zeros(len(pixel_values), *shape)
        seen = project(shown)
        return seen.new_zeros(len(pixel_values), *seen.shape[1:]).index_copy(0, shown, seen)

    def pool_sticker(self, regions: torch.Tensor, attrs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """H^R (unnormalised) from projected regions and descriptions: the relation-aware selector,
        or, for the descriptions-only ablation (`use_image` off), the mean of the present descriptions."""
        w = mask.unsqueeze(-1)
        described = (attrs * w).sum(1) / w.sum(1).clamp(min=1.0)
        if self.use_image:
            # a text-only sticker (sdk.sticker_texts) comes with all-zero regions: no image ever
            # projects to exactly zero (vis_proj has a bias), so that marks it inside the graph
            return torch.where(has_image(regions)[:, None], self.selector(regions, attrs, mask), described)
        # the regions stay in the graph (times zero) so that every exported selector has one signature
        return described + 0.0 * regions.sum(dim=(1, 2))[:, None]

    def attribute_share(self, regions: torch.Tensor, attrs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(S, A) how much each attribute drew the sticker side: its share of the selector's region
        weights, or, descriptions-only, an equal share per present description."""
        equal = mask / mask.sum(-1, keepdim=True).clamp(min=1.0)
        if self.use_image:
            return torch.where(has_image(regions)[:, None], self.selector.attribute_share(regions, attrs, mask), equal)
        return equal + 0.0 * regions.sum(dim=(1, 2))[:, None]

    # ------------------------------------------------------------------ training
    def forward(self, ids: torch.Tensor | None, mask: torch.Tensor | None, gold_label: torch.Tensor, pixels: torch.Tensor,
                attr_emb: torch.Tensor | None, attr_mask: torch.Tensor, positive: torch.Tensor, negative_mask: torch.Tensor,
                extra_ids: torch.Tensor | None = None, extra_mask: torch.Tensor | None = None,
                extra_labels: torch.Tensor | None = None, pooled: torch.Tensor | None = None,
                extra_pooled: torch.Tensor | None = None, log_prior: torch.Tensor | None = None,
                raw_regions: torch.Tensor | None = None, text_only: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L = l1 L_ret + l2 L_int on one batch; returns the loss and its parts (floats).

        `pooled` / `extra_pooled` replace the text encoder when it is frozen and its outputs cached.
        `log_prior` (U,): the candidates' log usage prior, added to the InfoNCE logits (logit
        adjustment) so that the cosine learns what the prior does not already say.
        """
        from .losses import hinge_retrieval, info_nce

        h_t = self.text_or_cached(pooled, ids, mask)
        logits, q = self.query(h_t, gold=gold_label if self.cfg.mode == "paper" else None)
        scores = q @ self.sticker_vectors(pixels, attr_emb, attr_mask, raw_regions, text_only).T
        if self.cfg.dual_encoder or self.cfg.retrieval_loss == "infonce":
            l_ret = info_nce(scores, positive, negative_mask, self.cfg.temperature, log_prior)
        else:
            l_ret = hinge_retrieval(scores, positive, negative_mask, self.cfg.margin)
        total = self.cfg.lambda_ret * l_ret
        parts = {"ret": float(l_ret.detach())}
        if logits is not None:
            all_logits, all_gold = logits, gold_label
            if extra_pooled is not None or extra_ids is not None:
                if extra_labels is None:
                    raise ValueError("extra intention texts come with their labels (extra_labels)")
                h_extra = self.text_or_cached(extra_pooled, extra_ids, extra_mask)
                all_logits = torch.cat([logits, self.head(h_extra)])
                all_gold = torch.cat([gold_label, extra_labels])
            labelled = all_gold >= 0  # unlabelled contexts (sdk.labels.UNLABELLED) train retrieval only
            if bool(labelled.any()):
                l_int = F.cross_entropy(all_logits[labelled], all_gold[labelled])
                total = total + self.cfg.lambda_int * l_int
                parts["int"] = float(l_int.detach())
        return total, parts
