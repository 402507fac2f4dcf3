"""The export's parity gate: each graph against PyTorch, and end to end on the final ranking.

:class:`Reference` holds PyTorch's outputs on held-out inputs, :func:`graph_cosines` and
:func:`end_to_end` measure a bundle against it, and :func:`gate_fp32` / :func:`gate_reduced` give
the verdict the exporter records in the manifest (as :class:`sdk.manifest.Gate`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from sdk.bundle import Bundle
from sdk.dataset import Dataset
from sdk.imageprep import ImageSettings
from sdk.labels import ATTRIBUTES
from sdk.scoring import ScoreTerms, ScoreWeights, usage_vector
from sdk.suggest import SUGGEST_OUTPUT
from sdk.textprep import ContextTokenizer
from training.catalog_scores import query_matrix, sticker_matrix
from training.encoders import region_features
from training.metrics import retrieval_metrics
from training.model import IntRA
from training.model_inputs import context_batch, refresh_label_table, sticker_inputs, sticker_labels

from .graphs import IntentionHeadGraph

FP32_MIN_COSINE = 0.9999
MIN_TOP5_AGREEMENT = 0.95
MAX_MAP_DELTA_POINTS = 0.5


def row_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest cosine between matching rows of two arrays (flattened per row)."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return float(cos.min())


def topk_agreement(scores: np.ndarray, reference: np.ndarray, k: int = 5) -> float:
    """Mean over queries of |top-k(scores) & top-k(reference)| / k."""
    k = min(k, scores.shape[1])
    a = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    b = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


@dataclass
class Verdict:
    """One check's outcome; the exporter gathers them into the manifest's :class:`sdk.manifest.Gate`."""

    passed: bool
    reasons: list[str]


def gate_fp32(graph_cosines: dict[str, float]) -> Verdict:
    bad = [f"{g}: output cosine {c:.6f} < {FP32_MIN_COSINE}" for g, c in graph_cosines.items() if c < FP32_MIN_COSINE]
    return Verdict(not bad, bad)


def gate_reduced(top5: float, map_delta_points: float) -> Verdict:
    reasons = []
    if top5 < MIN_TOP5_AGREEMENT:
        reasons.append(f"top-5 agreement with fp32 {top5:.4f} < {MIN_TOP5_AGREEMENT}")
    if abs(map_delta_points) > MAX_MAP_DELTA_POINTS:
        reasons.append(f"mAP differs from fp32 by {map_delta_points:+.3f} points (limit {MAX_MAP_DELTA_POINTS})")
    return Verdict(not reasons, reasons)


@dataclass(frozen=True)
class Fp32Result:
    """The fp32 bundle's scores and metrics on the reference split: what reduced precisions are gated against."""

    ranking: Ranking
    fused: bool

    @property
    def scores(self) -> np.ndarray:
        return self.ranking.scores

    @property
    def metrics(self) -> dict[str, float]:
        return self.ranking.metrics


class Reference:
    """PyTorch outputs on held-out inputs: the targets every graph is compared with.

    Rankings are compared by the final score apps get (cosine plus the prior and label terms of
    a pack built from the dataset, under the run's weights), and by the cosine alone."""

    def __init__(self, model, tokenizer, stickers, convs, labels, gold_index: dict[str, int], split: str = "validation",
                 max_queries: int = 256, usage: np.ndarray | None = None, weights: ScoreWeights = ScoreWeights()) -> None:
        self.split = split
        self.convs = list(convs)[:max_queries]
        self.gold = np.array([gold_index[c.gold] for c in self.convs])
        ids, mask = context_batch(self.convs[:64], tokenizer, model.cfg.use_knowledge)
        self.ids, self.mask = ids.numpy(), mask.numpy()
        with torch.no_grad():
            self.pooled = model.encode_text(ids, mask).numpy()
            head = IntentionHeadGraph(model).eval()
            self.head_out = [t.numpy() for t in head(torch.from_numpy(self.pooled))]
            self.pixels = stickers.pixels[:32].numpy()
            self.regions = model.vis_proj(region_features(model.vision, stickers.pixels[:32])).numpy()
            self.vectors = sticker_matrix(model, tokenizer, stickers).numpy()
            logits, queries = query_matrix(model, tokenizer, self.convs)
        self.stickers = stickers
        self.labels = labels
        self.usage = usage
        self.scores = self.final(queries.numpy() @ self.vectors.T, logits, weights, logits is not None)
        self.metrics = retrieval_metrics(self.scores, self.gold, labels)

    def final(self, cosines: np.ndarray, logits: np.ndarray | None, weights: ScoreWeights, has_head: bool) -> np.ndarray:
        """The final scores of these queries, as a pack built from the dataset ranks them."""
        return ScoreTerms(weights, self.labels, self.usage, has_head).scores(cosines, logits)


def graph_cosines(bundle: Bundle, ref: Reference, model, tokenizer) -> dict[str, float]:
    """Smallest output cosine per graph between onnxruntime and PyTorch on the same inputs."""
    from training.model_inputs import encode_attribute_table

    out = {"text_encoder": row_cosine(bundle.pooled(ref.ids, ref.mask), ref.pooled)}
    session = bundle.session("intention_head")
    names = [o.name for o in session.get_outputs()]
    head = session.run(None, {"pooled": ref.pooled})
    # the suggest logit is one number a row: compared as one vector over the batch
    out["intention_head"] = min(row_cosine(a.T, b.T) if name == SUGGEST_OUTPUT else row_cosine(a, b)
                                for name, a, b in zip(names, head, ref.head_out))
    out["vision_encoder"] = row_cosine(bundle.regions(ref.pixels), ref.regions)
    n = len(ref.regions)
    table = encode_attribute_table(model, tokenizer, ref.stickers.slots[:n]).numpy() if model.attributes else \
        np.zeros((n, len(ATTRIBUTES), bundle.text_hidden), np.float32)
    mask = ref.stickers.attribute_mask[:n].numpy()
    only = ref.stickers.text_only[:n]
    with torch.no_grad():
        target = model.sticker_vectors(torch.from_numpy(ref.pixels), torch.from_numpy(table), torch.from_numpy(mask),
                                       text_only=only).numpy()
    regions = ref.regions * (~only.numpy())[:, None, None]  # a text-only sticker reaches the graph with zero regions
    out["selector"] = row_cosine(bundle.stickers(regions, table, mask), target)
    return {k: round(v, 7) for k, v in out.items()}


@dataclass
class Ranking:
    """The validation queries ranked through a bundle, as apps rank them: with the pack's usage
    counts (a pack built from the dataset) and without (a pack built from a folder of images),
    and by the cosine alone (reported, not gated)."""

    scores: np.ndarray  # final score with the usage prior
    no_prior: np.ndarray  # final score without it
    cosines: np.ndarray
    metrics: dict[str, float]

    def agreement(self, reference: Ranking) -> dict[str, float]:
        """Top-5 agreement with `reference` of each ranking; the gate takes the weaker app ranking."""
        with_prior = topk_agreement(self.scores, reference.scores)
        without = topk_agreement(self.no_prior, reference.no_prior)
        return {"top5_agreement": round(min(with_prior, without), 4), "top5_with_prior": round(with_prior, 4),
                "top5_without_prior": round(without, 4), "cosine_top5_agreement": round(topk_agreement(self.cosines, reference.cosines), 4)}


def end_to_end(bundle: Bundle, ref: Reference) -> Ranking:
    """The validation queries against the catalog through the bundle, scored as sdk.Ranker scores."""
    st = ref.stickers
    only = st.text_only.numpy()
    vectors = np.concatenate([
        bundle.sticker_rows(st.pixels[k:k + 64].numpy()[~only[k:k + 64]], st.slots[k:k + 64], only[k:k + 64], with_share=False)[0]
        for k in range(0, len(st.pixels), 64)])
    pooled = np.concatenate([
        bundle.pooled(*(t.numpy() for t in context_batch(ref.convs[k:k + 64], bundle.tokenizer, "knowledge" in bundle.manifest.inputs)))
        for k in range(0, len(ref.convs), 64)])
    logits, queries = bundle.head(pooled)
    cosines = queries @ vectors.T
    weights = bundle.score_weights
    scores = ref.final(cosines, logits, weights, bundle.has_intention)
    no_prior = ref.final(cosines, logits, replace(weights, prior=0.0), bundle.has_intention)
    return Ranking(scores, no_prior, cosines, retrieval_metrics(scores, ref.gold, ref.labels))


def reference(model: IntRA, tokenizer: ContextTokenizer, image_settings: ImageSettings, ds: Dataset,
              weights: ScoreWeights) -> Reference:
    """PyTorch's outputs on the validation split (the test split when there is none), ranked with
    the training split's usage counts and labels under `weights`, as a pack built from `ds` is."""
    split = "validation" if "validation" in ds.splits else "test"
    refresh_label_table(model, tokenizer)
    labels, _ = sticker_labels(ds)
    usage = usage_vector(ds.usage_counts() or None, ds.sticker_ids)
    return Reference(model, tokenizer, sticker_inputs(ds, image_settings), ds.split(split), labels, ds.sticker_index(), split,
                     usage=usage, weights=weights)
