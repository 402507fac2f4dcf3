"""Whether this moment calls for a sticker at all: the intention graph's `suggest_logit` output.

Bundles whose run was given a suggest head (`intra suggest`) carry ``suggest`` in the manifest:
the threshold chosen on validation for a stated precision, that precision, and the base rate of
the data it learnt from. ``confidence = sigmoid(suggest_logit)`` estimates the probability that
the writer would attach a sticker here (calibrated to the base rate); ``suggest`` is
``confidence >= threshold``. The ranking itself never depends on it: the app decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import IntraError, is_number

SUGGEST_OUTPUT = "suggest_logit"


@dataclass(frozen=True)
class SuggestSettings:
    threshold: float
    target_precision: float
    base_rate: float

    def to_json(self) -> dict[str, float]:
        return {"threshold": self.threshold, "target_precision": self.target_precision, "base_rate": self.base_rate}

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError]) -> SuggestSettings | None:
        """The manifest's ``suggest`` object (None when absent); `error` names the field at fault."""
        if obj is None:
            return None
        if not isinstance(obj, Mapping):
            raise error(f"{where}: field 'suggest' must be an object, got {type(obj).__name__}")
        values = []
        for key in ("threshold", "target_precision", "base_rate"):
            v = obj.get(key)
            if not is_number(v, 0.0, 1.0):
                raise error(f"{where}: field 'suggest.{key}' must be a number in [0, 1], got {v!r}")
            values.append(float(v))
        return cls(*values)


def confidence(logits: np.ndarray) -> np.ndarray:
    """sigmoid, computed without overflow for large |logit|."""
    x = np.asarray(logits, np.float64).reshape(-1)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))
