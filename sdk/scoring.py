"""How a sticker's final score is made: the cosine, a usage prior, a per-sticker bias and a label term.

    score(s | ctx) = cos(query, H^R_s)
                   + w_prior * log P_usage(s)                 (when the pack carries usage counts)
                   + b_s                                      (when the pack carries biases)
                   + w_label * log P_head(label(s) | ctx)     (when the bundle has an intention head)

``P_usage(s)`` is the pack's usage count of `s` plus `smoothing`, normalised over the pack; a sticker
without a label gets ``log(1 / L)`` for the label term, the value of knowing nothing. The weights
are chosen on validation when a model is trained and travel in the bundle's manifest (``scoring``).
A pack's biases ``b_s`` are a calibration of that pack for its model (one number per sticker, e.g.
fitted on held-out conversations for macro-F1); a sticker without one gets 0.

The added terms are inner products (the label term is ``log P(ctx) . onehot(label(s))``, the prior
and bias are ``1 . (w log P(s) + b_s)``), so the whole score is one product of augmented vectors: exact top-k and an
ANN index over inner products rank by the same number. Training, evaluation and the SDK all score
through :class:`ScoreTerms`, so a report shows what apps get.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from .errors import ArgumentError, IntraError, is_number
from .labels import LABELS

DEFAULT_SMOOTHING = 0.5
# a bias is added to a cosine (-1 to 1): beyond this it would decide every ranking alone
MAX_BIAS = 100.0


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of the terms added to the cosine (0 turns a term off)."""

    prior: float = 0.0
    label: float = 0.0
    smoothing: float = DEFAULT_SMOOTHING

    def __post_init__(self) -> None:
        # one NaN or infinite weight turns every score into NaN or -inf; refuse it where it is made
        for name, value in (("prior", self.prior), ("label", self.label), ("smoothing", self.smoothing)):
            if not is_number(value, lo=0.0):
                raise ArgumentError(f"ScoreWeights.{name} must be a finite number >= 0, got {value!r}")
        if self.smoothing <= 0:
            raise ArgumentError(f"ScoreWeights.smoothing must be > 0, got {self.smoothing!r}")

    @property
    def active(self) -> bool:
        return self.prior != 0.0 or self.label != 0.0

    def to_json(self) -> dict[str, float]:
        return {"prior_weight": self.prior, "label_weight": self.label, "prior_smoothing": self.smoothing}

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError]) -> ScoreWeights:
        """Parse the manifest's ``scoring`` object; `error` names `where` and the field at fault."""
        if obj is None:
            return cls()
        if not isinstance(obj, Mapping):
            raise error(f"{where}: field 'scoring' must be an object, got {type(obj).__name__}")
        values = {}
        for key, default in (("prior_weight", 0.0), ("label_weight", 0.0), ("prior_smoothing", DEFAULT_SMOOTHING)):
            v = obj.get(key, default)
            if not is_number(v, lo=0.0):
                raise error(f"{where}: field 'scoring.{key}' must be a finite number >= 0, got {v!r}")
            values[key] = float(v)
        if values["prior_smoothing"] <= 0:
            raise error(f"{where}: field 'scoring.prior_smoothing' must be > 0")
        return cls(values["prior_weight"], values["label_weight"], values["prior_smoothing"])


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def log_prior(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """log of (count + smoothing) normalised over the pack."""
    c = np.asarray(counts, dtype=np.float64) + smoothing
    return np.log(c / c.sum())


class ScoreTerms:
    """The prior, bias and label terms of one pack under one set of weights.

    `label_ids[s]` is sticker s's label index (-1: none); `usage` its usage count (None: the pack
    has no counts, so the prior is off); `has_head`: the model predicts intentions; `bias` the
    pack's per-sticker bias (None: none). The prior and the bias are one sticker-side term, called
    the prior below.
    """

    def __init__(self, weights: ScoreWeights, label_ids: Sequence[int], usage: np.ndarray | None, has_head: bool,
                 bias: np.ndarray | None = None) -> None:
        self.weights = weights
        self.use_label = has_head and weights.label != 0.0
        self.use_prior = weights.prior != 0.0 and usage is not None
        ids = np.asarray(label_ids, dtype=np.int64)
        # column of each sticker in the query-side label columns; the last one means "no label"
        self._column = np.where(ids >= 0, ids, len(LABELS))
        parts = [weights.prior * log_prior(usage, weights.smoothing)] if usage is not None and self.use_prior else []
        if bias is not None and np.any(bias != 0):
            parts.append(np.asarray(bias, np.float64))
        self._prior = np.sum(parts, axis=0).astype(np.float32) if parts else None

    @property
    def active(self) -> bool:
        return self.use_label or self._prior is not None

    def query_extra(self, logits: np.ndarray | None, rows: int) -> np.ndarray:
        """(Q, L + 2) query-side columns: w_label log P(l | ctx), w_label log(1/L), 1."""
        out = np.zeros((rows, len(LABELS) + 2), np.float32)
        if self.use_label and logits is not None:
            out[:, :len(LABELS)] = self.weights.label * log_softmax(np.asarray(logits, np.float64))
            out[:, len(LABELS)] = self.weights.label * math.log(1.0 / len(LABELS))
        out[:, -1] = 1.0
        return out

    def sticker_extra(self) -> np.ndarray:
        """(S, L + 2) sticker-side columns: one-hot label (or "none"), w_prior log P(s) + b_s. Built on
        demand (for an ANN index over augmented vectors): 30 floats a sticker."""
        n = len(self._column)
        out = np.zeros((n, len(LABELS) + 2), np.float32)
        out[np.arange(n), self._column] = 1.0
        if self._prior is not None:
            out[:, -1] = self._prior
        return out

    def sticker_side(self, vectors: np.ndarray) -> np.ndarray:
        """The pack's vectors with the sticker-side columns appended when a term is on: what an ANN
        index is built over (the Ranker's in memory and the one `build_pack` stores alike)."""
        return np.hstack([vectors, self.sticker_extra()]) if self.active else vectors

    def label_terms(self, logits: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        """(Q, k) w_label log P(label(s) | ctx) of the stickers `idx[r]` (zeros when the term is off)."""
        if not self.use_label or logits is None:
            return np.zeros(idx.shape, np.float32)
        cols = self.query_extra(logits, len(idx))[:, :-1]
        return np.take_along_axis(cols, self._column[idx], axis=1)

    def prior_at(self, idx: np.ndarray) -> np.ndarray:
        """w_prior log P(s) + b_s of the stickers `idx` (zeros when neither is on)."""
        return np.zeros(idx.shape, np.float32) if self._prior is None else self._prior[idx]

    def prior_moves(self, idx: np.ndarray) -> np.ndarray:
        """How far the prior moved the stickers `idx` against the pack's average sticker."""
        return np.zeros(idx.shape, np.float32) if self._prior is None else self._prior[idx] - self._prior.mean()

    def scores(self, cosines: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
        """Final scores from (Q, S) cosines and the (Q, L) intention logits (None without a head).

        The same number as ``[q, query_extra] . [v, sticker_extra]``, computed by a gather instead
        of a wider product (tested equal)."""
        if not self.active:
            return cosines
        out = np.array(cosines, dtype=np.float32, copy=True)
        if self.use_label and logits is not None:
            cols = self.query_extra(logits, len(out))[:, :-1]
            out += cols[:, self._column]
        if self._prior is not None:
            out += self._prior[None, :]
        return out


def _sticker_numbers(values: Any, ids: Sequence[str], where: str, error: type[IntraError], name: str, plural: str,
                     unit: str, rule: str, lo: float, hi: float = math.inf) -> dict[str, float]:
    """{sticker id: number from `lo` to `hi`} over known ids; anything else raises `error` naming it."""
    if not isinstance(values, Mapping):
        raise error(f"{where}: {plural} must be a JSON object mapping sticker id to {unit}, got {type(values).__name__}")
    known = set(ids)
    out: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(key, str) or key not in known:
            raise error(f"{where}: {name} names sticker {key!r}, which is not in the pack")
        if not is_number(value, lo=lo, hi=hi):
            raise error(f"{where}: {name} of {key!r} must be {rule}, got {value!r}")
        out[key] = float(value)
    return out


def validate_usage(usage: Any, ids: Sequence[str], where: str, error: type[IntraError]) -> dict[str, float]:
    """Usage counts as {sticker id: count >= 0}; unknown ids and bad values raise `error`."""
    out = _sticker_numbers(usage, ids, where, error, "usage", "usage counts", "count", "a finite count >= 0", 0.0)
    if not math.isfinite(sum(out.values())):  # each count finite, their sum not: every prior would be -inf
        raise error(f"{where}: usage counts sum to more than a float can hold; give counts of a real size")
    return out


def validate_bias(bias: Any, ids: Sequence[str], where: str, error: type[IntraError]) -> dict[str, float]:
    """Per-sticker biases as {sticker id: finite number}; unknown ids and bad values raise `error`."""
    return _sticker_numbers(bias, ids, where, error, "bias", "biases", "a number",
                            f"a finite number within ±{MAX_BIAS:g}", -MAX_BIAS, MAX_BIAS)


@overload
def usage_vector(usage: Mapping[str, float], ids: Sequence[str]) -> np.ndarray: ...
@overload
def usage_vector(usage: None, ids: Sequence[str]) -> None: ...
@overload
def usage_vector(usage: Mapping[str, float] | None, ids: Sequence[str]) -> np.ndarray | None: ...


def usage_vector(usage: Mapping[str, float] | None, ids: Sequence[str]) -> np.ndarray | None:
    """Counts (or biases) aligned with `ids` (0 for stickers without one); None when there are none."""
    if usage is None:
        return None
    return np.array([float(usage.get(i, 0.0)) for i in ids], dtype=np.float64)
