"""Turn a conversation (and optional knowledge) into token ids: shared by training and the SDK.

Training and the runtime both call :class:`ContextTokenizer`, so the ids a bundle sees at run time
are exactly those the model was trained on. Turns are joined oldest first with the separator
token; knowledge, when given, is the second segment. A context longer than `max_length` loses
its oldest tokens first (left truncation of the first segment), so the latest turns survive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from .errors import IntraError
from .labels import KNOWLEDGE_RELATIONS
from .schema import Int, Obj, OneOf, check

Knowledge = Mapping[str, Sequence[str]]


def knowledge_text(knowledge: Knowledge | None) -> str | None:
    """One string of the knowledge relations, in the fixed relation order; None when empty."""
    if not knowledge:
        return None
    parts = [f"{rel}: {'; '.join(knowledge[rel])}" for rel in KNOWLEDGE_RELATIONS if knowledge.get(rel)]
    return " . ".join(parts) if parts else None


TEXT_SETTINGS_SCHEMA = Obj({"max_length": Int(1, 8192), "turn_separator": str, "truncation_side": OneOf(("left", "right"))})


@dataclass(frozen=True)
class TextSettings:
    """How contexts become ids; travels in the run config and the bundle's manifest (field 'text')."""

    max_length: int = 64
    turn_separator: str = "[SEP]"
    truncation_side: str = "left"

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError]) -> TextSettings:
        """Parse and check the JSON form; `error` names `where` and the field at fault."""
        check(obj, TEXT_SETTINGS_SCHEMA, where, error)
        return cls(obj["max_length"], obj["turn_separator"], obj["truncation_side"])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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

    def context_string(self, turns: Sequence[str]) -> str:
        return f" {self.settings.turn_separator} ".join(t.strip() for t in turns)

    def _pad(self, encodings) -> tuple[np.ndarray, np.ndarray]:
        length = max(1, max(len(e.ids) for e in encodings))
        ids = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def encode_contexts(self, contexts: Sequence[Sequence[str]], knowledge: Sequence[Knowledge | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) int64 arrays for a batch of contexts (lists of turn texts)."""
        knowledge = knowledge if knowledge is not None else [None] * len(contexts)
        encodings = []
        for turns, know in zip(contexts, knowledge):
            text, extra = self.context_string(turns), knowledge_text(know)
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
