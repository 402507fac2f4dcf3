"""The label set, attribute names and knowledge relations: the one place they are defined.

The 28 intention labels are GoEmotions' (27 emotions + neutral) in GoEmotions' own id order,
the tag set of StickerInt. Everything else (datasets, models, bundles) refers to these tuples
and carries a copy in its own metadata so that a mismatch is detectable.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

#: How the query is formed from the intention head: the paper's argmax label, the probability-
#: weighted labels, or those plus the projected context. A model without a head has only CONTEXT_MODE.
QUERY_MODES: tuple[str, ...] = ("paper", "soft", "fused")
CONTEXT_MODE = "context"

#: The paper's four sticker attributes, in the order models stack them.
ATTRIBUTES: tuple[str, ...] = ("gesture", "posture", "facial_expression", "verbal")

#: ATOMIC-2020 relations used as commonsense knowledge about the context.
KNOWLEDGE_RELATIONS: tuple[str, ...] = ("xIntent", "xNeed", "xWant", "xEffect", "xReact")


def label_id(name: str) -> int:
    """Index of an intention label; raises KeyError naming the unknown label."""
    try:
        return LABEL_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown intention label {name!r}; expected one of {', '.join(LABELS)}") from None
