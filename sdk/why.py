"""Why a sticker was picked: the parts of its score and the description that drew the selector.

A match's score is ``cosine + label term + usage prior + history`` (:mod:`sdk.scoring`,
:mod:`sdk.history`); :class:`Why` gives each part, with the prior measured against the pack's
average sticker (so it says how far the prior moved this sticker), the predicted intention, and
the sticker's attribute whose description drew the selector's attention most (its share of the
region weights, read from the pack: nothing is recomputed at rank time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .pack import PackSticker


@dataclass(frozen=True)
class Why:
    intention: str | None
    intention_probability: float | None
    cosine: float
    label_term: float
    prior_term: float
    history_term: float
    attribute: str | None = None
    attribute_share: float | None = None
    attribute_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, intention: bool = True) -> str:
        """One readable line, e.g. ``joy 0.81 | facial_expression 62%: "a wide smile" | prior +0.10``
        (without the intention, which is the same for every match of a result, when `intention` is False)."""
        parts = []
        if intention and self.intention is not None and self.intention_probability is not None:
            parts.append(f"{self.intention} {self.intention_probability:.2f}")
        if self.attribute is not None:
            text = (self.attribute_text or "")[:40]
            parts.append(f"{self.attribute} {self.attribute_share or 0:.0%}" + (f': "{text}"' if text else ""))
        parts.append(f"cos {self.cosine:+.2f}")
        for name, value in (("label", self.label_term), ("prior", self.prior_term), ("history", self.history_term)):
            if value:
                parts.append(f"{name} {value:+.2f}")
        return " | ".join(parts)


def sticker_focus(sticker: PackSticker) -> tuple[str | None, float | None, str | None]:
    """(attribute, share, its description) from the pack, or Nones when the pack has no focus."""
    if sticker.focus is None:
        return None, None, None
    attribute, share = sticker.focus
    return attribute, share, sticker.attributes.get(attribute)
