"""Parity of exported graphs: per graph against PyTorch, and end to end on the final ranking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
class Gate:
    passed: bool
    reasons: list[str]


def gate_fp32(graph_cosines: dict[str, float]) -> Gate:
    bad = [f"{g}: output cosine {c:.6f} < {FP32_MIN_COSINE}" for g, c in graph_cosines.items() if c < FP32_MIN_COSINE]
    return Gate(not bad, bad)


def gate_reduced(top5: float, map_delta_points: float) -> Gate:
    reasons = []
    if top5 < MIN_TOP5_AGREEMENT:
        reasons.append(f"top-5 agreement with fp32 {top5:.4f} < {MIN_TOP5_AGREEMENT}")
    if abs(map_delta_points) > MAX_MAP_DELTA_POINTS:
        reasons.append(f"mAP differs from fp32 by {map_delta_points:+.3f} points (limit {MAX_MAP_DELTA_POINTS})")
    return Gate(not reasons, reasons)
