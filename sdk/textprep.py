"""Turn a conversation (and optional knowledge) into token ids: shared by training and the SDK.

Training and the runtime both call :class:`ContextTokenizer`, so the ids a bundle sees at run time
are exactly those the model was trained on. Turns are joined oldest first with the separator
token; knowledge, when given, is the second segment. A context longer than `max_length` loses
its oldest tokens first (left truncation of the first segment), so the latest turns survive.

A model trained with speaker markers (``TextSettings.speaker_markers``) reads each turn behind
the marker of who said it: the user who replies ("me") or anyone else ("them"); which turns are
the user's own is decided by :func:`sdk.context.own_turns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from .errors import ArgumentError, IntraError
from .labels import KNOWLEDGE_RELATIONS
from .schema import Int, ListOf, Obj, OneOf, check

Knowledge = Mapping[str, Sequence[str]]


def knowledge_text(knowledge: Knowledge | None) -> str | None:
    """One string of the knowledge relations, in the fixed relation order; None when empty."""
    if not knowledge:
        return None
    parts = [f"{rel}: {'; '.join(knowledge[rel])}" for rel in KNOWLEDGE_RELATIONS if knowledge.get(rel)]
    return " . ".join(parts) if parts else None


TEXT_SETTINGS_SCHEMA = Obj({"max_length": Int(1, 8192), "turn_separator": str, "truncation_side": OneOf(("left", "right"))},
                           {"speaker_markers": ListOf(str, 2, 2)})
#: The words put before the user's own turns and everyone else's, when a model reads speakers:
#: plain words, so a pretrained encoder's vocabulary already holds them.
SPEAKER_MARKERS = ("me:", "them:")


@dataclass(frozen=True)
class TextSettings:
    """How contexts become ids; travels in the run config and the bundle's manifest (field 'text')."""

    max_length: int = 64
    turn_separator: str = "[SEP]"
    truncation_side: str = "left"
    speaker_markers: tuple[str, str] | None = None  # (the user's own turns, everyone else's); None: unmarked

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError]) -> TextSettings:
        """Parse and check the JSON form; `error` names `where` and the field at fault."""
        check(obj, TEXT_SETTINGS_SCHEMA, where, error)
        markers = obj.get("speaker_markers")
        return cls(obj["max_length"], obj["turn_separator"], obj["truncation_side"],
                   (markers[0], markers[1]) if markers else None)

    def to_json(self) -> dict[str, Any]:
        # unmarked settings keep their older JSON form, so the fingerprints of existing bundles hold
        out = asdict(self)
        if self.speaker_markers is None:
            del out["speaker_markers"]
        else:
            out["speaker_markers"] = list(self.speaker_markers)
        return out


def alternating(n: int) -> list[bool]:
    """Whose turns, when nothing says: the newest is the user's own, the others alternate back from it."""
    return [(n - 1 - i) % 2 == 0 for i in range(n)]


class ContextTokenizer:
    """A `tokenizers` tokenizer set up for contexts (left truncation, pad to batch longest)."""

    def __init__(self, tokenizer: Tokenizer, settings: TextSettings) -> None:
        self.settings = settings
        self._tok = Tokenizer.from_str(tokenizer.to_str())
        self._tok.no_padding()
        self._tok.enable_truncation(settings.max_length, strategy="only_first", direction=settings.truncation_side)
        self._plain = Tokenizer.from_str(tokenizer.to_str())
        self._plain.no_padding()
        self._plain.enable_truncation(settings.max_length, direction="right")
        self._knowledge = Tokenizer.from_str(tokenizer.to_str())
        self._knowledge.no_padding()
        self._knowledge.enable_truncation(max(1, settings.max_length // 2), direction="right")
        pad = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad
        self.unk_id = tokenizer.token_to_id("[UNK]")

    @classmethod
    def from_file(cls, path: Path | str, settings: TextSettings) -> ContextTokenizer:
        return cls(Tokenizer.from_file(str(path)), settings)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def context_string(self, turns: Sequence[str], own: Sequence[bool] | None = None) -> str:
        """The turns joined by the separator; with speaker markers, each behind its speaker's
        marker (`own[i]`: turn i is the replying user's own; None: :func:`alternating`)."""
        texts = [t.strip() for t in turns]
        if own is not None and len(own) != len(texts):  # zip would drop the turns past the shorter list
            raise ArgumentError(f"own marks {len(own)} turns, the context has {len(texts)}")
        markers = self.settings.speaker_markers
        if markers is not None:
            flags = alternating(len(texts)) if own is None else own
            texts = [f"{markers[0] if mine else markers[1]} {t}" for t, mine in zip(texts, flags)]
        return f" {self.settings.turn_separator} ".join(texts)

    def _pad(self, encodings) -> tuple[np.ndarray, np.ndarray]:
        length = max(1, max(len(e.ids) for e in encodings))
        ids = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def encode_contexts(self, contexts: Sequence[Sequence[str]], knowledge: Sequence[Knowledge | None] | None = None,
                        own: Sequence[Sequence[bool] | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) int64 arrays for a batch of contexts (lists of turn texts);
        `own[i]` marks context i's turns that are the replying user's own (read only by a model
        with speaker markers)."""
        knowledge = knowledge if knowledge is not None else [None] * len(contexts)
        owns = own if own is not None else [None] * len(contexts)
        encodings = []
        for turns, know, mine in zip(contexts, knowledge, owns):
            text, extra = self.context_string(turns, mine), knowledge_text(know)
            if extra is None:
                encodings.append(self._tok.encode(text))
                continue
            # Knowledge keeps at most half the budget (cut at a token boundary of the original
            # string); the context, cut from its oldest end, takes the rest.
            cut = self._knowledge.encode(extra, add_special_tokens=False).offsets
            extra = extra[: cut[-1][1]] if cut else extra
            encodings.append(self._tok.encode(text, extra))
        return self._pad(encodings)

    def encode_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) for plain texts (labels, attribute descriptions)."""
        return self._pad(self._plain.encode_batch(list(texts)))

    def unk_rate(self, texts: Sequence[str]) -> float:
        """Fraction of non-special tokens that are [UNK]."""
        if self.unk_id is None or not texts:
            return 0.0
        total = unk = 0
        for e in self._plain.encode_batch(list(texts)):
            toks = [i for i, s in zip(e.ids, e.special_tokens_mask) if not s]
            total += len(toks)
            unk += sum(1 for i in toks if i == self.unk_id)
        return unk / total if total else 0.0
