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

#: the longest description a summary line shows (cut at a word, with an ellipsis)
SUMMARY_TEXT = 40


def clip(text: str, limit: int = SUMMARY_TEXT) -> str:
    """`text` within `limit` characters, cut at the last word that fits and ended with "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


@dataclass(frozen=True)
class Why:
    """The parts of one match's score: ``score == cosine + label_term + history_term + the usage prior``,
    where `prior_term` is how far the prior moved this sticker against the pack's average sticker
    (so the parts add up to the score less the prior of the average sticker, the same for every match).

    Attributes:
        intention: the predicted intention of the context (None: the bundle has no intention head).
        intention_probability: its probability, 0 to 1.
        cosine: the cosine of the query and the sticker's vector, -1 to 1.
        label_term: ``w_label * log P(sticker's label | context)``, at most 0 (a sticker without a
            label gets the uninformed ``log 1/28``).
        prior_term: how far the usage prior (with the pack's bias, when it has one) moved this sticker
            against the pack's average sticker (0 without usage counts or biases).
        history_term: the personal history's term, at least 0 (0 without a history).
        attribute: the sticker's attribute whose description drew the selector most (None when
            the sticker has no descriptions).
        attribute_share: that attribute's share of the selector's region weights, 0 to 1.
        attribute_text: that attribute's description.
    """

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
            text = clip(self.attribute_text or "")
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
