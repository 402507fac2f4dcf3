"""A bundle's final scores on a dataset's validation split, with the parts that levers add terms to.

The levers measured after training (``experiments.emoji_head``, ``experiments.added_terms``)
all start here: the bundle at fp32 over a pack built from the dataset (so it carries the training
split's usage counts), ranking validation exactly as ``sdk.Ranker`` does. The test split is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.bundle import Bundle
from sdk.dataset import Conversation, Dataset, load_dataset
from sdk.ranker import Ranker
from sdk.temp_pack import temporary_ranker

METRICS = ("MRR", "R@10", "mAP")


@dataclass
class ValidationScores:
    ds: Dataset
    convs: list[Conversation]
    bundle: Bundle
    ranker: Ranker
    final: np.ndarray  # (Q, S) the score apps rank by
    logits: np.ndarray | None  # (Q, L) intention logits
    prior: np.ndarray  # (S,) w_prior * log P_usage(s)
    label_term: np.ndarray  # (Q, S) w_label * log P(label(s) | ctx)
    gold: np.ndarray  # (Q,) index of the gold sticker in the pack
    labels: list[int]  # the stickers' labels (-1: none), in pack order

    @property
    def cosine(self) -> np.ndarray:
        return self.final - self.prior[None, :] - self.label_term

    def metrics(self, scores: np.ndarray) -> dict[str, float]:
        """MRR, R@10 and mAP in percent of `scores` (pack order) on these conversations."""
        from training.metrics import per_query_metrics

        m = per_query_metrics(scores, self.gold, self.labels)
        return {k: float(100 * m[k].mean()) for k in METRICS}

    def pack_order(self, by_dataset: np.ndarray) -> np.ndarray:
        """Columns of a (Q, S) matrix in the dataset's sticker order, put in pack order."""
        index = {s.id: i for i, s in enumerate(self.ds.stickers)}
        return by_dataset[:, [index[s] for s in self.ranker.pack.ids]]


def contexts(convs: Sequence[Conversation]) -> list[list[tuple[str, str]]]:
    return [c.turns() for c in convs]


def validation_scores(model: Path, data: Path, split: str = "validation") -> ValidationScores:
    """Score `split` of `data` with the bundle `model` (fp32, CPU) as the SDK ranks it."""
    ds = load_dataset(data)
    convs = list(ds.split(split))
    with temporary_ranker(model, data, precision="fp32") as ranker:
        knowledge = [c.knowledge_dict() for c in convs]
        logits, final = ranker.score_matrix(contexts(convs), knowledge if ranker.use_knowledge else None)
        n = len(ranker.pack.ids)
        prior = ranker.terms.prior_at(np.arange(n))
        label_term = ranker.terms.label_terms(logits, np.broadcast_to(np.arange(n), (len(convs), n)))
        labels = ranker.pack.label_ids()
    index = {s: i for i, s in enumerate(ranker.pack.ids)}
    return ValidationScores(ds, convs, ranker.bundle, ranker, final, logits, np.asarray(prior, float), np.asarray(label_term, float),
                            np.array([index[c.gold] for c in convs]), labels)


def rows_table(title: str, runs: list[dict[str, Any]]) -> list[str]:
    """A markdown table of each row's MRR, R@10 and mAP as mean ± std over `runs` (one per bundle)."""
    lines = [f"# {title}", "", "| score | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for n in runs[0]["rows"]:
        vals = np.array([[run["rows"][n][m] for m in METRICS] for run in runs])
        lines.append(f"| {n} | " + " | ".join(f"{a:.2f} ± {s:.2f}" for a, s in zip(vals.mean(0), vals.std(0))) + " |")
    return lines
