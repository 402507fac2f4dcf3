"""The label set, attribute names and knowledge relations: the one place they are defined.

The 28 intention labels are GoEmotions' (27 emotions + neutral) in GoEmotions' own id order,
the tag set of StickerInt. Everything else (datasets, models, bundles) refers to these tuples
and carries a copy in its own metadata so that a mismatch is detectable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import IntraError

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
#: The label id of a context or sticker without an intention label (an unlabelled source).
UNLABELLED = -1


def label_id(label: str | None) -> int:
    """The index of `label` in :data:`LABELS`, :data:`UNLABELLED` for None."""
    return UNLABELLED if label is None else LABEL_INDEX[label]

#: How the query is formed from the intention head: the paper's argmax label, the probability-
#: weighted labels, or those plus the projected context. A model without a head has only CONTEXT_MODE.
QUERY_MODES: tuple[str, ...] = ("paper", "soft", "fused")
CONTEXT_MODE = "context"

#: The paper's four sticker attributes, in the order models stack them.
ATTRIBUTES: tuple[str, ...] = ("gesture", "posture", "facial_expression", "verbal")

#: ATOMIC-2020 relations used as commonsense knowledge about the context.
KNOWLEDGE_RELATIONS: tuple[str, ...] = ("xIntent", "xNeed", "xWant", "xEffect", "xReact")


def check_label(value: Any, where: str, error: type[IntraError], name: str = "label") -> str:
    """`value` when it is one of LABELS; `error` naming `where` and the field otherwise."""
    if not isinstance(value, str) or value not in LABEL_INDEX:
        raise error(f"{where}: field {name!r}: unknown label {value!r}")
    return value


def check_attributes(value: Any, where: str, error: type[IntraError]) -> dict[str, str]:
    """{attribute: description} over ATTRIBUTES, empty or null descriptions dropped; `error` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(f"{where}: field 'attributes' must be an object, got {type(value).__name__}")
    clean: dict[str, str] = {}
    for key, text in value.items():
        if key not in ATTRIBUTES:
            raise error(f"{where}: field 'attributes': unknown attribute {key!r}; expected {', '.join(ATTRIBUTES)}")
        if text is not None and not isinstance(text, str):
            raise error(f"{where}: field 'attributes.{key}' must be a string, got {type(text).__name__}")
        if text and text.strip():
            clean[key] = text
    return clean
