"""Retrieval and classification metrics (numpy only), as the paper defines them plus strict ones.

Relevance follows the paper: a retrieved sticker is correct when its intention label equals the
gold sticker's label (the gold sticker itself is always relevant, even when it has no label).
Ties in scores are broken pessimistically: among equal scores, irrelevant stickers rank first,
so a constant scorer earns no credit from the order of the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 11)


def pessimistic_order(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Indices of `scores` (one query) from best to worst, relevant items last within ties."""
    return np.lexsort((relevant.astype(np.int8), -scores))


def relevance_matrix(sticker_labels: Sequence[int], gold: np.ndarray) -> np.ndarray:
    """(Q, S) bool: sticker s is relevant to query q. Labels are ints, -1 for unknown."""
    labels = np.asarray(sticker_labels)
    gold_labels = labels[gold]
    rel = (labels[None, :] == gold_labels[:, None]) & (gold_labels[:, None] >= 0)
    rel[np.arange(len(gold)), gold] = True
    return rel


def ranked_relevance(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """(Q, S) bool relevance in ranked order."""
    out = np.empty_like(relevant)
    for q in range(scores.shape[0]):
        out[q] = relevant[q, pessimistic_order(scores[q], relevant[q])]
    return out


def average_precision(ranked_row: np.ndarray) -> float:
    hits = np.flatnonzero(ranked_row)
    if len(hits) == 0:
        return 0.0
    return float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))


def gold_ranks(scores: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """1-based rank of the gold sticker per query, ties counted against it."""
    g = scores[np.arange(len(gold)), gold]
    return (scores >= g[:, None]).sum(1)


def pr_curve(ranked: np.ndarray) -> dict[str, list[float]]:
    """11-point interpolated precision-recall curve, averaged over queries."""
    curves = []
    for row in ranked:
        total = row.sum()
        if total == 0:
            continue
        tp = np.cumsum(row)
        precision, recall = tp / np.arange(1, len(row) + 1), tp / total
        interp = [precision[recall >= r].max() if (recall >= r).any() else 0.0 for r in RECALL_POINTS]
        curves.append(interp)
    mean = np.mean(curves, axis=0) if curves else np.zeros_like(RECALL_POINTS)
    return {"recall": RECALL_POINTS.round(2).tolist(), "precision": [float(x) for x in mean]}


def per_query_metrics(scores: np.ndarray, gold: np.ndarray, sticker_labels: Sequence[int]) -> dict[str, np.ndarray]:
    """Each query's P@1/3/5 and AP (label match), R@1/5/10 and reciprocal rank (gold sticker)."""
    rel = relevance_matrix(sticker_labels, gold)
    ranked = ranked_relevance(scores, rel)
    ranks = gold_ranks(scores, gold)
    return {
        "P@1": ranked[:, :1].mean(1), "P@3": ranked[:, :3].mean(1), "P@5": ranked[:, :5].mean(1),
        "mAP": np.array([average_precision(r) for r in ranked]),
        "R@1": (ranks <= 1).astype(float), "R@5": (ranks <= 5).astype(float), "R@10": (ranks <= 10).astype(float),
        "MRR": 1.0 / ranks,
    }


def mean_metrics(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """Each metric's mean over the queries (0 for none)."""
    return {k: float(v.mean()) if len(v) else 0.0 for k, v in per_query.items()}


def retrieval_metrics(scores: np.ndarray, gold: np.ndarray, sticker_labels: Sequence[int]) -> dict[str, float]:
    """P@1/3/5 and mAP (label match), R@1/5/10 and MRR (gold sticker)."""
    return mean_metrics(per_query_metrics(scores, gold, sticker_labels))


def bootstrap_interval(values: np.ndarray, rounds: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-query `values` (queries resampled)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(rounds, len(values)))
    means = values[idx].mean(1)
    tail = (1.0 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def paired_difference(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Mean of `a - b` over the same queries and its paired bootstrap interval; beyond noise when
    the interval leaves out zero. Pairing removes the spread that both rows share (easy and hard
    conversations), so it separates rows that two separate intervals cannot."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same queries, got shapes {a.shape} and {b.shape}")
    lo, hi = bootstrap_interval(a - b, rounds, seed, level)
    return {"mean": float((a - b).mean()), "interval": (lo, hi), "beyond_noise": bool(lo > 0 or hi < 0)}


def macro_f1(gold: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """Macro-F1 in percent as sklearn's classification_report (TweetEval's official scorer) gives
    it: per label 2TP / (2TP + FP + FN), averaged over the labels gold or predicted at least once.
    In numpy, fast enough for a bootstrap."""
    gold_arr, pred_arr = np.asarray(gold, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    n = int(max(gold_arr.max(initial=-1), pred_arr.max(initial=-1))) + 1
    tp = np.bincount(gold_arr[gold_arr == pred_arr], minlength=n)
    support, made = np.bincount(gold_arr, minlength=n), np.bincount(pred_arr, minlength=n)
    seen = (support + made) > 0
    return 100.0 * float((2 * tp[seen] / (support[seen] + made[seen])).mean()) if seen.any() else 0.0


def paired_macro_f1(gold: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, rounds: int = 2000, seed: int = 0,
                    level: float = 0.95) -> dict[str, Any]:
    """Paired bootstrap of macro-F1(a) - macro-F1(b) (percent) over the same resampled queries.

    `pred_a` and `pred_b` are (Q,) predictions or (seeds, Q): with seeds, each side's macro-F1 is
    its mean over its seeds, so the interval is the test set's noise on the seed-averaged rows."""
    gold = np.asarray(gold)
    a, b = np.atleast_2d(pred_a), np.atleast_2d(pred_b)

    def diff(idx: np.ndarray) -> float:
        return (float(np.mean([macro_f1(gold[idx], p[idx]) for p in a]))
                - float(np.mean([macro_f1(gold[idx], p[idx]) for p in b])))

    rng = np.random.default_rng(seed)
    diffs = np.array([diff(rng.integers(0, len(gold), len(gold))) for _ in range(rounds)])
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": diff(np.arange(len(gold))), "interval": (float(lo), float(hi)), "beyond_noise": bool(lo > 0 or hi < 0)}


def classification_metrics(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (0-1) over the labels that occur in gold or predictions."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    return {"accuracy": float(np.mean(pred == gold)) if len(gold) else 0.0,
            "macro_f1": macro_f1(gold, pred) / 100.0 if len(gold) else 0.0}
