"""One additive bias per label (or per sticker), fitted on validation for macro-F1.

Macro-F1 rewards predicting rare labels; a model trained for likelihood (cross-entropy, InfoNCE)
predicts the frequent ones. The usual remedy for a skewed label set is one bias per label, chosen
on held-out data: the plain classifier's row uses it on its logits, and a ranking bundle's pack
carries the same kind of bias (``pack.json``'s ``bias``, :mod:`sdk.scoring`) fitted on its scores.
"""

from __future__ import annotations

import numpy as np

from .metrics import macro_f1

#: Grid of the classifier's logits (a few units apart).
LOGIT_GRID = np.linspace(-3.0, 3.0, 61)


def score_grid(scores: np.ndarray, points: int = 61) -> np.ndarray:
    """A grid of biases at the scale of `scores`: ±3 standard deviations of a row's spread."""
    centred = np.asarray(scores, np.float64) - np.asarray(scores, np.float64).mean(1, keepdims=True)
    span = 3.0 * float(centred.std()) or 1.0
    return np.linspace(-span, span, points)


def fit_label_bias(scores: np.ndarray, gold: np.ndarray, sweeps: int = 3, grid: np.ndarray = LOGIT_GRID) -> np.ndarray:
    """One additive bias per column of (Q, L) `scores` that maximises macro-F1 against `gold`
    (coordinate ascent).

    Each sweep tries every grid value for one label at a time, the others fixed, and keeps the
    best; ties keep the current value, so a bias moves only when it helps.
    """
    bias = np.zeros(scores.shape[1])
    best = macro_f1(gold, (scores + bias).argmax(1))
    for _ in range(sweeps):
        for label in range(len(bias)):
            for value in grid:
                trial = bias.copy()
                trial[label] = value
                f1 = macro_f1(gold, (scores + trial).argmax(1))
                if f1 > best + 1e-9:
                    best, bias = f1, trial
    return bias
