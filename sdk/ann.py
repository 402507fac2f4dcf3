"""Approximate search over large packs: a FAISS HNSW index, built with the pack and stored in it.

Above :data:`ANN_THRESHOLD` stickers (or when asked) ranking searches an HNSW index instead of
the exact product. The index holds the pack's vectors augmented with the score's sticker-side
columns (label one-hot and weighted log prior, :meth:`sdk.scoring.ScoreTerms.sticker_extra`), so
it ranks by the same final score. Building one for 100,000 stickers takes tens of seconds, so
`build_pack` writes it into the pack (``ann.faiss``, named in pack.json with its sha256 and the
digest of the vectors it indexes) and a Ranker loads it instead of building it again. The file is
checked against its sha256 before FAISS reads it; a digest that differs from the pack's own vectors
and score weights (a stale or edited index) raises PackError.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .errors import IntraError, MissingExtraError

#: exact search below this many stickers: at 100,000 the exact product is as fast (see AnnIndex)
ANN_THRESHOLD = 200_000
ANN_FILE = "ann.faiss"


def vectors_digest(vectors: np.ndarray) -> str:
    """sha256 of the float32 vectors an index is built over (shape included)."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingExtraError("approximate search over large packs", "ann", "faiss") from None
    return faiss


class AnnIndex:
    """FAISS HNSW over inner product (vectors are normalised, so it ranks by cosine).

    efSearch 512: on 100,000 isotropic unit vectors of dimension 64 (the worst case: real sticker
    vectors cluster) it keeps recall@10 at 0.99 (128: 0.82, 256: 0.95), at about the exact
    product's speed there (1.4 against 1.5 ms on 2 cores), which is why exact search stays the
    default below ANN_THRESHOLD; on vectors drawn around a real pack's, 64 already gives 0.97.
    """

    EF_SEARCH = 512

    def __init__(self, vectors: np.ndarray | None, m: int = 32, index: Any = None) -> None:
        faiss = _faiss()
        if index is None:
            if vectors is None:
                raise ValueError("AnnIndex needs vectors or a loaded index")
            index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        index.hnsw.efSearch = self.EF_SEARCH
        self.index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return idx, scores

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, rows: int, dim: int, where: str, error: type[IntraError]) -> AnnIndex:
        """An index from bytes whose sha256 was already checked; `error` naming `where` when they
        are not the HNSW index of `rows` vectors of `dim` values."""
        faiss = _faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))  # comes back as its own class
        except RuntimeError as e:
            raise error(f"{where}: not a FAISS index ({str(e).splitlines()[0][:200]})") from None
        if not hasattr(index, "hnsw") or index.ntotal != rows or index.d != dim:
            raise error(f"{where}: the index holds {index.ntotal} vectors of {index.d} values, the pack {rows} of {dim}; "
                        "rebuild the pack (intra pack build)")
        return cls(None, index=index)
