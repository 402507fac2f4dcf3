"""No near-duplicates in the top k: `rank(..., diverse=True)`.

Packs often hold several copies of one image (re-uploads, resized or recoloured variants). Their
vectors are nearly identical, so they score alike and can fill the top k together. With `diverse`
the ranker reads a wider candidate list, best first, and drops every sticker whose vector has a
cosine above `threshold` with one already kept. Without it nothing here runs.
"""

from __future__ import annotations

import numpy as np

from .errors import ArgumentError, is_number

DIVERSE_THRESHOLD = 0.98  # cosine of two pack vectors above which the later one is a near-duplicate
CANDIDATES_PER_RESULT = 8  # candidates read per sticker returned


def check_threshold(threshold: float) -> float:
    if not is_number(threshold, -1.0, 1.0):
        raise ArgumentError(f"diverse_threshold must be a number from -1 to 1, got {threshold!r}")
    return float(threshold)


def candidate_count(top_k: int, pack_size: int) -> int:
    """How many candidates to read so that `top_k` distinct ones usually survive."""
    return min(pack_size, top_k * CANDIDATES_PER_RESULT)


def drop_near_duplicates(indices: np.ndarray, scores: np.ndarray, vectors: np.ndarray, top_k: int,
                         threshold: float = DIVERSE_THRESHOLD) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per row, the first `top_k` candidates (best first) none of which is within `threshold` of
    an earlier kept one. Rows may come back shorter when the candidates run out."""
    out_idx, out_scores = [], []
    for row_idx, row_scores in zip(indices, scores):
        ids: list[int] = []
        kept_scores: list[float] = []
        for i, score in zip(row_idx, row_scores):
            if i < 0:  # an ANN row shorter than asked
                continue
            if ids and float(np.max(vectors[ids] @ vectors[i])) > threshold:
                continue
            ids.append(int(i))
            kept_scores.append(float(score))
            if len(ids) == top_k:
                break
        out_idx.append(np.array(ids, dtype=np.int64))
        out_scores.append(np.array(kept_scores, dtype=np.float32))
    return out_idx, out_scores
