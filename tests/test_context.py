"""What a conversation and its knowledge may be, and their caps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.context import MAX_CONTEXT_CHARS, MAX_KNOWLEDGE_CHARS, ContextError, parse_context, parse_knowledge
from sdk.ranker import Ranker


@pytest.mark.parametrize("bad,message", [
    ("", "empty"), ("   \n", "empty"), ([], "empty"), ([" ", ""], "empty"),
    ([1, "x"], r"context\[0\]: expected a string, got int"),
    ([("A", None)], r"context\[0\] text: expected a string"),
    ([("A", "b", "c")], "must be \\(speaker, text\\)"),
    (b"\xff\xfe bad", "not valid UTF-8"),
    (42, "expected a string or a list"),
    ([{"speaker": "A"}], "needs a 'text' \\(or 'content', or a 'sticker'\\) field"),
])
def test_bad_contexts_raise_context_error(bad, message):
    with pytest.raises(ContextError, match=message):
        parse_context(bad)


@given(st.lists(st.one_of(st.text(max_size=20), st.tuples(st.text(max_size=5), st.text(max_size=20)),
                          st.integers(), st.none(), st.binary(max_size=10)), max_size=6))
@settings(max_examples=200)
def test_context_parser_returns_clean_turns_or_raises(items):
    try:
        turns = parse_context(items)
    except ContextError:
        return
    assert turns and all(isinstance(t, str) and t == t.strip() and t for t in turns)


def test_long_contexts_keep_the_latest_turns(tiny_bundle, tiny_pack):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    last = "thank you so much, you saved me"
    long = ranker.rank(["blah " * 40] * 30 + [last])
    assert len(long.matches) == 5
    ids, _ = ranker.bundle.tokenizer.encode_contexts([["blah " * 40] * 30 + [last]])
    assert ids.shape[1] == ranker.bundle.text_settings.max_length
    # the latest turn survived truncation whole, at the end
    tail = ranker.bundle.tokenizer.encode_contexts([[last]])[0][0, 1:-1]
    assert list(ids[0, -len(tail) - 1:-1]) == list(tail)


def test_a_very_long_context_keeps_its_newest_turns():
    turns = [f"turn {i} " + "x" * 40 for i in range(10_000)]
    kept = parse_context(turns)
    assert kept[-1] == turns[-1].strip() and len(kept) <= 64
    one = parse_context("y" * (MAX_CONTEXT_CHARS * 3) + "END")
    assert len(one) == 1 and len(one[0]) == MAX_CONTEXT_CHARS and one[0].endswith("END")


def test_knowledge_is_capped(tiny_bundle, tiny_pack):
    huge = {"xIntent": ["to be kind " * 100] * 10_000, "xReact": "happy " * 200_000}
    kept = parse_knowledge(huge)
    assert sum(len(t) for ts in kept.values() for t in ts) <= MAX_KNOWLEDGE_CHARS
    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    assert len(ranker.rank("thanks a lot", knowledge=huge).matches) == 5
