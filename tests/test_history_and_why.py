"""Personal history, `why`, sticker turns in the context, on a tiny bundle."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from helpers import mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import sdk
from sdk.cli import app
from sdk.context import ContextError, parse_context
from sdk.errors import ArgumentError
from sdk.history import History, HistoryError
from sdk.labels import ATTRIBUTES
from sdk.pack import load_pack, sticker_turn_text
from sdk.ranker import Ranker

CONTEXT = [("A", "I passed the exam!"), ("B", "no way"), ("A", "so happy today")]


@pytest.fixture(scope="module")
def ranker(tiny_bundle, tiny_pack) -> Ranker:
    return Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")


# ---------------------------------------------------------------------------- history

def test_history_weight_blends_frequency_and_recency(tmp_path):
    h = History(tmp_path / "h.json", half_life=2)
    for sid in ["a", "a", "b"]:
        h.record(sid)
    # a: used at clocks 1 and 2, b at 3; each later use halves after 2 more uses
    assert h.weight("a") == pytest.approx((0.5 ** 0.5 + 1) * 0.5 ** 0.5)
    assert h.weight("b") == pytest.approx(1.0)
    assert h.weight("never") == 0.0
    again = History(tmp_path / "h.json", half_life=2)  # the file holds the same state
    assert again.clock == 3 and again.weight("a") == pytest.approx(h.weight("a")) and again.uses["a"].count == 2


def test_recorded_stickers_rise_and_forget_erases(ranker, tiny_pack, tmp_path):
    ranker = Ranker(ranker.bundle, ranker.pack, history=tmp_path / "me.json", history_weight=0.5)
    before = ranker.rank(CONTEXT, top_k=len(ranker.pack))
    last = before.matches[-1].sticker_id
    for _ in range(30):
        ranker.record(last)
    after = ranker.rank(CONTEXT, top_k=len(ranker.pack))
    ids = [m.sticker_id for m in after.matches]
    assert ids.index(last) < len(ids) - 1
    moved = next(m for m in after.matches if m.sticker_id == last)
    old = next(m for m in before.matches if m.sticker_id == last)
    assert moved.score - old.score == pytest.approx(0.5 * math.log1p(ranker.history.weight(last)), abs=1e-5)
    assert json.loads((tmp_path / "me.json").read_text())["stickers"][last]["count"] == 30
    ranker.forget()
    assert [m.sticker_id for m in ranker.rank(CONTEXT, top_k=len(ranker.pack)).matches] == [m.sticker_id for m in before.matches]
    assert json.loads((tmp_path / "me.json").read_text())["stickers"] == {}


def test_history_in_memory_by_default_and_weight_zero_is_off(ranker):
    r = Ranker(ranker.bundle, ranker.pack)
    assert r.history.path is None
    r.record(r.pack.ids[0])
    assert len(r.history) == 1
    off = Ranker(ranker.bundle, ranker.pack, history=r.history, history_weight=0.0)
    np.testing.assert_array_equal(off.score_matrix(["hello there"])[1], ranker.score_matrix(["hello there"])[1])


def test_history_ids_not_in_the_pack_are_ignored_and_record_refuses_them(ranker, tmp_path):
    path = tmp_path / "h.json"
    h = History(path)
    h.record("sticker-of-another-pack")
    r = Ranker(ranker.bundle, ranker.pack, history=path)
    np.testing.assert_array_equal(r.score_matrix(["hello"])[1], ranker.score_matrix(["hello"])[1])
    with pytest.raises(ArgumentError, match="not in the pack"):
        r.record("nope")


@pytest.mark.parametrize("content", ["{not json", '{"format_version": 1, "kind": "intra-history", "clock": 1, "stickers": {"a": {"count": 0, "last": 1, "weight": 1}}}',
                                     '{"format_version": 1, "kind": "intra-history", "clock": 1, "stickers": {"a": {"count": 1, "last": 5, "weight": 1}}}',
                                     '{"format_version": 9, "kind": "intra-history", "clock": 0, "stickers": {}}', '{"some": "other file"}'])
def test_a_corrupt_history_raises_and_is_never_overwritten(ranker, tmp_path, content):
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(HistoryError, match=str(path)):
        Ranker(ranker.bundle, ranker.pack, history=path)
    assert path.read_text() == content
    result = CliRunner().invoke(app, ["history", "record", str(path), "x"])
    assert result.exit_code == 2 and "not overwritten" in result.output
    assert path.read_text() == content


@given(data=st.data())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_history_file_mutations_raise_only_history_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("hist") / "h.json"
    good = History(path)
    for sid in ["a", "b", "a"]:
        good.record(sid)
    doc = mutate(json.loads(path.read_text()), data)
    path.write_text(json.dumps(doc))
    try:
        h = History(path)
    except HistoryError:
        assert path.read_text() == json.dumps(doc)  # refused and left as it was (text: NaN != NaN)
        return
    assert all(math.isfinite(h.weight(k)) and h.weight(k) >= 0 for k in h.uses)
    h.record("c")  # a history that loads can be written on


def test_an_unwritable_history_says_so_and_keeps_the_file(tmp_path, monkeypatch):
    import errno

    from sdk import atomic

    h = History(tmp_path / "h.json")
    h.record("a")
    before = (tmp_path / "h.json").read_text()

    def full_disk(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_json", full_disk)
    with pytest.raises(HistoryError, match="could not be written .No space left on device.; the change is kept in memory"):
        h.record("b")
    assert (tmp_path / "h.json").read_text() == before and h.weight("b") > 0


def test_history_with_ann_ranks_like_exact(ranker, tmp_path):
    pytest.importorskip("faiss")
    exact = Ranker(ranker.bundle, ranker.pack, history_weight=0.4)
    ann = Ranker(ranker.bundle, ranker.pack, ann=True, history=exact.history, history_weight=0.4)
    for sid in ranker.pack.ids[-3:] * 5:
        exact.record(sid)
    a, b = exact.rank(CONTEXT, top_k=5), ann.rank(CONTEXT, top_k=5)
    assert [m.sticker_id for m in a.matches] == [m.sticker_id for m in b.matches]
    np.testing.assert_allclose([m.score for m in a.matches], [m.score for m in b.matches], atol=1e-4)


def test_history_cli_record_show_forget_and_rank(tiny_pack, tmp_path):
    path = tmp_path / "h.json"
    sid = load_pack(tiny_pack).ids[-1]
    runner = CliRunner()
    assert runner.invoke(app, ["history", "record", str(path), "ghost", "--pack", str(tiny_pack)]).exit_code == 2
    assert not path.exists()  # nothing recorded when an id is refused
    assert runner.invoke(app, ["history", "record", str(path), sid, sid, "--pack", str(tiny_pack)]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["history", "show", str(path)]).output)
    assert shown["uses"] == 2 and shown["stickers"][0]["id"] == sid
    out = runner.invoke(app, ["rank", "so happy", "--pack", str(tiny_pack), "--history", str(path), "--history-weight", "5",
                              "--precision", "fp32", "--json"])
    assert out.exit_code == 0, out.output
    top = json.loads(out.output)["matches"][0]
    assert top["sticker_id"] == sid and top["why"]["history_term"] > 0
    assert runner.invoke(app, ["history", "forget", str(path)]).exit_code == 0
    assert json.loads(path.read_text())["clock"] == 0


# ---------------------------------------------------------------------------- why

def test_attribute_shares_split_the_selectors_weight_among_present_attributes():
    import torch

    from training.selector import RelationSelector

    torch.manual_seed(0)
    sel = RelationSelector(dim=8, key_dim=4)
    regions, attrs = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    mask = torch.tensor([[1.0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    share = sel.attribute_share(regions, attrs, mask)
    assert torch.allclose(share[0].sum(), torch.tensor(1.0)) and share[0, 1] == 0  # absent: no share
    assert torch.all(share[1] == 0)  # nothing present: nothing drew it
    assert torch.allclose(share[2], torch.tensor([0.0, 1.0, 0.0, 0.0]))  # alone, it drew everything
    assert torch.all(RelationSelector(8, 4, use_attributes=False).attribute_share(regions, attrs, mask) == 0)


def test_pack_records_the_attribute_that_drew_the_selector(tiny_pack):
    pack = load_pack(tiny_pack)
    with_desc = [s for s in pack.stickers if s.attributes]
    assert with_desc and all(s.focus is not None for s in with_desc)
    for s in with_desc:
        attribute, share = s.focus
        assert attribute in s.attributes and 0 < share <= 1  # only a present description can draw it
    assert all(s.focus is None for s in pack.stickers if not s.attributes)


def test_why_decomposes_the_score(ranker):
    r = Ranker(ranker.bundle, ranker.pack, weights=sdk.ScoreWeights(prior=0.3, label=0.2))
    r.record(r.pack.ids[2])
    result = r.rank(CONTEXT, top_k=4, explain=True)
    plain = r.rank(CONTEXT, top_k=4)
    assert [m.sticker_id for m in result.matches] == [m.sticker_id for m in plain.matches]
    assert all(m.why is None for m in plain.matches)
    mean_prior = float(np.mean(r.terms.prior_at(np.arange(len(r.pack)))))
    for m in result.matches:
        w = m.why
        assert w.intention == result.intention and w.intention_probability == pytest.approx(result.intention_probability)
        assert m.score == pytest.approx(w.cosine + w.label_term + w.prior_term + mean_prior + w.history_term, abs=1e-4)
        sticker = r.pack.stickers[r.pack.ids.index(m.sticker_id)]
        if sticker.focus is not None:
            assert (w.attribute, w.attribute_text) == (sticker.focus[0], sticker.attributes[sticker.focus[0]])
        assert w.summary()
    assert result.to_dict()["matches"][0]["why"]["cosine"] == pytest.approx(result.matches[0].why.cosine)


def test_rank_cli_shows_a_why_column(tiny_pack):
    out = CliRunner().invoke(app, ["rank", "so happy today", "--pack", str(tiny_pack), "--precision", "fp32"])
    assert out.exit_code == 0, out.output
    assert "why" in out.output.splitlines()[1] and "cos " in out.output


# ---------------------------------------------------------------------------- sticker turns

def test_a_sticker_turn_reads_as_its_label_or_descriptions(ranker):
    pack = ranker.pack
    s = next(x for x in pack.stickers if len(x.attributes) >= 2 and x.label)
    assert sticker_turn_text(s) == s.label
    unlabelled = replace(s, label=None)
    assert sticker_turn_text(unlabelled) == "; ".join(s.attributes[a] for a in ATTRIBUTES if a in s.attributes)
    assert sticker_turn_text(replace(s, label=None, attributes={})) == "a sticker"
    as_sticker = [{"speaker": "B", "sticker": s.id}, {"speaker": "A", "text": "haha"}]
    as_text = [("B", sticker_turn_text(s)), ("A", "haha")]
    np.testing.assert_array_equal(ranker.score_matrix([as_sticker])[1], ranker.score_matrix([as_text])[1])
    assert not np.allclose(ranker.score_matrix([as_sticker])[1], ranker.score_matrix(["haha"])[1])


def test_an_unknown_sticker_turn_names_the_turn(ranker):
    with pytest.raises(ContextError, match=r"context\[1\]\.sticker: sticker 'ghost' is not in the pack"):
        ranker.rank([{"text": "hi"}, {"speaker": "B", "sticker": "ghost"}])
    with pytest.raises(ContextError, match="either 'text' or 'sticker'"):
        parse_context([{"sticker": "a", "text": "b"}], lambda _: "x")
    with pytest.raises(ContextError, match="not in the pack"):
        parse_context([{"sticker": "a"}])  # no pack to read it from
    assert parse_context([{"sticker": "a"}, "hey"], {"a": "a waving cat"}.get) == ["a waving cat", "hey"]


def test_rank_cli_takes_sticker_turns(tiny_pack):
    sid = load_pack(tiny_pack).ids[0]
    runner = CliRunner()
    ok = runner.invoke(app, ["rank", f"@sticker:{sid}", "haha", "--pack", str(tiny_pack), "--precision", "fp32", "--json"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["rank", "@sticker:ghost", "haha", "--pack", str(tiny_pack), "--precision", "fp32"])
    assert bad.exit_code == 2 and "context[0].sticker: sticker 'ghost' is not in the pack" in bad.output


def test_an_id_the_file_cannot_hold_is_refused_before_any_change(tmp_path):
    from sdk.errors import ArgumentError
    from sdk.history import History

    h = History(tmp_path / "h.json")
    h.record("a")
    with pytest.raises(ArgumentError, match="lone surrogates"):
        h.record("a\udcfe")
    assert h.clock == 1 and set(h.uses) == {"a"}
    h.record("b")  # later uses still save
    assert set(History(tmp_path / "h.json").uses) == {"a", "b"}


def test_two_processes_recording_into_one_file_lose_no_use(tmp_path):
    import subprocess
    import sys

    from sdk.history import History

    path = tmp_path / "h.json"
    code = ("import sys; from sdk.history import History; h = History(sys.argv[1])\n"
            "for i in range(150): h.record(f'{sys.argv[2]}{i % 7}')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), name]) for name in ("a", "b")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    h = History(path)
    assert h.clock == 300 and sum(u.count for u in h.uses.values()) == 300


def test_a_history_is_checked_and_trimmed_on_load(tmp_path):
    import json

    from sdk.history import MAX_STICKERS, History, HistoryError

    def write(stickers, clock):
        (tmp_path / "h.json").write_text(json.dumps({"format_version": 1, "kind": "intra-history", "clock": clock,
                                                     "stickers": stickers}))

    write({"x": {"count": 1, "last": 1, "weight": 1e308}}, 1)  # more weight than uses can give
    with pytest.raises(HistoryError, match="above its count"):
        History(tmp_path / "h.json")
    n = MAX_STICKERS + 50
    write({f"s{i}": {"count": 1, "last": i, "weight": 1.0} for i in range(1, n + 1)}, n)
    h = History(tmp_path / "h.json")
    assert len(h) == MAX_STICKERS and "s1" not in h.uses and f"s{n}" in h.uses  # the oldest (lightest) go
    h.record("new")
    assert len(h) == MAX_STICKERS and "new" in h.uses
