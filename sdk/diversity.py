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
#: The most stickers `diverse=True` returns: its cost grows with top_k squared (each candidate is
#: compared with every sticker kept): at this bound 0.03 s for distinct candidates and 0.5 s for the
#: worst case (999 kept, then 7,001 duplicates) on a 2-core Xeon (family 6 model 167), while training ran.
MAX_DIVERSE_TOP_K = 1000


def check_diverse_top_k(top_k: int) -> None:
    """ArgumentError when `top_k` is beyond what the near-duplicate filter serves in bounded time."""
    if top_k > MAX_DIVERSE_TOP_K:
        raise ArgumentError(f"diverse=True returns at most {MAX_DIVERSE_TOP_K} stickers, got top_k={top_k}; "
                            "ask for fewer, or rank without diverse")


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
    kept = np.empty((top_k, vectors.shape[1]), dtype=np.float32)  # the kept vectors, filled in order
    for row_idx, row_scores in zip(indices, scores):
        ids: list[int] = []
        kept_scores: list[float] = []
        for i, score in zip(row_idx, row_scores):
            if i < 0:  # an ANN row shorter than asked
                continue
            if ids and float(np.max(kept[:len(ids)] @ vectors[i])) > threshold:
                continue
            kept[len(ids)] = vectors[i]
            ids.append(int(i))
            kept_scores.append(float(score))
            if len(ids) == top_k:
                break
        out_idx.append(np.array(ids, dtype=np.int64))
        out_scores.append(np.array(kept_scores, dtype=np.float32))
    return out_idx, out_scores
