"""Two simple probes on frozen all-MiniLM-L6-v2 features: baselines Int-RA has to beat.

Features: the context (turns joined by [SEP], newest kept when too long) through the frozen
encoder, mean-pooled, L2-normalised, 64 tokens.

- ``probe-emoji``: softmax regression from the context to the sticker, on the training split
  (Adam, lr 0.05, weight decay 1e-3, 300 full-batch epochs).
- ``probe-intention``: a softmax regression to the 28 labels on every training conversation and
  every extra intention-only comment (200 epochs, otherwise the same), then
  ``score(s) = log sum_l P(l | ctx) P(s | l)`` with ``P(s | l)`` from the training split's counts
  plus 0.5.

Encoding GoEmotions' 42k extra comments takes minutes on 2 cores, so features are cached in
`cache_dir` (``.npy``, keyed by the texts and the encoder).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sdk import atomic
from sdk.dataset import Conversation, Dataset
from sdk.labels import LABELS

from .encoders import default_text_model_dir, load_tokenizer

PROBES = ("probe-emoji", "probe-intention")


@dataclass(frozen=True)
class ProbeConfig:
    max_length: int = 64
    lr: float = 0.05
    weight_decay: float = 1e-3
    emoji_epochs: int = 300
    intention_epochs: int = 200
    smoothing: float = 0.5
    batch: int = 128
    seed: int = 0


def context_text(conv: Conversation) -> str:
    return " [SEP] ".join(t.text for t in conv.context)


class FrozenFeatures:
    """Mean-pooled, L2-normalised outputs of a frozen encoder directory, cached on disk."""

    def __init__(self, model_dir: Path | None = None, cache_dir: Path | None = None, cfg: ProbeConfig = ProbeConfig(),
                 progress: bool = True) -> None:
        from transformers import AutoModel

        self.model_dir = Path(model_dir) if model_dir is not None else default_text_model_dir()
        self.tokenizer = load_tokenizer(self.model_dir)
        self.tokenizer.no_padding()
        # the newest words are kept, as the runtime keeps the newest turns
        self.tokenizer.enable_truncation(cfg.max_length, direction="left")
        self.model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
        self.cache_dir, self.cfg, self.progress = cache_dir, cfg, progress
        self._memo: dict[str, np.ndarray] = {}  # the same texts asked again in this process (probes over seeds)

    def _key(self, texts: Sequence[str]) -> str:
        h = hashlib.sha256(f"{self.model_dir.name}|{self.cfg.max_length}".encode())
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:24]

    @torch.no_grad()
    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # batches of similar length pad little
        out = np.zeros((len(texts), self.model.config.hidden_size), np.float32)
        for k in tqdm(range(0, len(order), self.cfg.batch), desc="frozen features", disable=not self.progress, leave=False):
            rows = order[k:k + self.cfg.batch]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n], mask[r, :n] = encodings[i].ids, 1
            hidden = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        key = self._key(texts)
        if key not in self._memo:
            self._memo[key] = self._cached(texts, key)
        return self._memo[key]

    def _cached(self, texts: Sequence[str], key: str) -> np.ndarray:
        if self.cache_dir is None or not texts:
            return self._encode(texts)
        path = Path(self.cache_dir) / f"features-{key}.npy"
        if path.is_file():
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                return cached
        feats = self._encode(texts)
        atomic.write_npy(path, feats)
        return feats


def softmax_regression(x: np.ndarray, y: np.ndarray, classes: int, epochs: int, cfg: ProbeConfig) -> torch.nn.Linear:
    """A linear softmax classifier fitted full-batch with Adam."""
    torch.manual_seed(cfg.seed)
    layer = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(layer(xt), yt).backward()
        opt.step()
    return layer.eval()


def _apply(layer: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.log_softmax(layer(torch.from_numpy(x)), -1).numpy()


def probe_emoji(ds: Dataset, features: FrozenFeatures, convs: Sequence[Conversation], cfg: ProbeConfig = ProbeConfig()) -> np.ndarray:
    """(Q, S) log-probabilities of each sticker for `convs`, from the training split."""
    train = ds.split("train")
    index = ds.sticker_index()
    layer = softmax_regression(features([context_text(c) for c in train]), np.array([index[c.gold] for c in train]),
                               len(ds.stickers), cfg.emoji_epochs, cfg)
    return _apply(layer, features([context_text(c) for c in convs]))


def sticker_given_label(ds: Dataset, smoothing: float) -> np.ndarray:
    """(L, S) P(sticker | label) from the training split's counts plus `smoothing`."""
    index = ds.sticker_index()
    counts = np.full((len(LABELS), len(ds.stickers)), smoothing)
    for c in ds.split("train"):
        if c.label is not None:
            counts[c.label_index, index[c.gold]] += 1
    return counts / counts.sum(1, keepdims=True)


def probe_intention(ds: Dataset, features: FrozenFeatures, convs: Sequence[Conversation],
                    cfg: ProbeConfig = ProbeConfig()) -> np.ndarray:
    """(Q, S) log sum_l P(l | ctx) P(s | l): an intention probe composed with training counts."""
    labelled = [c for c in (*ds.split("train"), *ds.splits.get("extra_intention", ())) if c.label is not None]
    layer = softmax_regression(features([context_text(c) for c in labelled]), np.array([c.label_index for c in labelled]),
                               len(LABELS), cfg.intention_epochs, cfg)
    log_p_label = _apply(layer, features([context_text(c) for c in convs]))
    return np.log(np.exp(log_p_label) @ sticker_given_label(ds, cfg.smoothing))


def probe_scores(ds: Dataset, convs: Sequence[Conversation], cache_dir: Path | None = None, progress: bool = True,
                 model_dir: Path | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Both probes' (Q, S) scores for `convs`."""
    cfg = ProbeConfig(seed=seed)
    features = FrozenFeatures(model_dir, cache_dir, cfg, progress)
    return {"probe-emoji": probe_emoji(ds, features, convs, cfg), "probe-intention": probe_intention(ds, features, convs, cfg)}
