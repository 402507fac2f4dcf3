"""StickerQueries: the adapter's split rules on a tiny source, and the table's rows on it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sdk.dataset import DatasetError, load_dataset
from training.data.sticker_queries import build, split_queries

ROWS = [
    ("cat.png", "猫猫, 猫咪，喵猫, 猫猫 "),  # a duplicate (spacing) and a full-width comma
    ("dog.png", "狗狗, 狗子, 汪狗, 大狗"),
    ("bird.png", "鸟儿, 鸟鸟, 飞鸟"),
    ("two.png", "二, 两个"),
    ("one.png", "一"),
]


def _source(tmp_path, rows=ROWS, lang="zh", header="sticker_id,labeled_queries"):
    folder = tmp_path / "shared" / "sticker-queries"
    folder.mkdir(parents=True)
    lines = [header, *(f'{sid},"{queries}"' for sid, queries in rows)]
    (folder / f"{lang}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "shared"


def test_split_queries_drops_duplicates_and_blanks():
    assert split_queries("Thumbs up, thumbs  up,, good job ，好") == ["Thumbs up", "good job", "好"]


def test_the_adapter_holds_out_one_test_and_one_validation_query_per_sticker(tmp_path):
    counts = build(_source(tmp_path), tmp_path / "ds", lang="zh", seed=0)
    ds = load_dataset(tmp_path / "ds")
    assert counts["stickers"] == 5 and counts["stickers_with_held_queries"] == 3 and counts["stickers_distractors_only"] == 2
    assert all(s.image is None and s.language == "zh" for s in ds.stickers)
    by_id = {s.id: s for s in ds.stickers}
    queries = {sid.removesuffix(".png"): split_queries(q) for sid, q in ROWS}
    assert queries["cat"] == ["猫猫", "猫咪", "喵猫"]
    for split in ("test", "validation"):
        gold = [c.gold for c in ds.split(split)]
        assert sorted(gold) == ["bird", "cat", "dog"]  # one each; the stickers with 1-2 queries are never answers
    for sid in ("cat", "dog", "bird"):
        held = [c.context[0].text for split in ("test", "validation") for c in ds.split(split) if c.gold == sid]
        described = by_id[sid].descriptions
        assert len(held) == 2 and not set(held) & set(described)
        assert sorted([*held, *described]) == sorted(queries[sid])
        assert sorted(c.context[0].text for c in ds.split("train") if c.gold == sid) == sorted(described)
    assert by_id["two"].descriptions == ("二", "两个") and by_id["one"].descriptions == ("一",)
    assert all(c.label is None for split in ds.splits.values() for c in split)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text(encoding="utf-8"))
    assert "distractor" in info["rules"]["few"]
    # the same seed draws the same queries, another seed may not
    build(_source(tmp_path / "again"), tmp_path / "same", lang="zh", seed=0)
    assert (tmp_path / "same" / "test.jsonl").read_bytes() == (tmp_path / "ds" / "test.jsonl").read_bytes()


@pytest.mark.parametrize("rows, header, message", [
    (ROWS, "id,queries", "expected the columns sticker_id,labeled_queries"),
    ([("a.png", "x"), ("a.png", "y")], "sticker_id,labeled_queries", "'a' appears twice"),
    ([("", "x")], "sticker_id,labeled_queries", "field 'sticker_id' is empty"),
    ([("a.png", " , ")], "sticker_id,labeled_queries", "no sticker with a query"),
])
def test_a_bad_source_is_refused_naming_the_line(tmp_path, rows, header, message):
    with pytest.raises(DatasetError, match=message):
        build(_source(tmp_path, rows, header=header), tmp_path / "ds", lang="zh")
    assert not (tmp_path / "ds").exists()


def test_a_missing_language_file_names_the_source(tmp_path):
    with pytest.raises(DatasetError, match="en.csv: not found"):
        build(_source(tmp_path), tmp_path / "ds", lang="en")
    with pytest.raises(DatasetError, match="--lang"):
        build(_source(tmp_path / "b"), tmp_path / "ds", lang="fr")


def test_the_table_ranks_every_row_on_the_same_queries(tiny_bundle, tmp_path):
    from experiments.sticker_queries import Row, language_table, markdown, tfidf_row

    build(_source(tmp_path), tmp_path / "ds", lang="zh", seed=0)
    ds = load_dataset(tmp_path / "ds")
    # every held-out query shares its animal's character with its descriptions and none other's
    assert tfidf_row(ds).ranks.tolist() == [[1, 1, 1]]
    result = language_table(ds, [("tiny Int-RA", [tiny_bundle, tiny_bundle])], tmp_path / "cache", multilingual=True)
    assert list(result["rows"]) == ["tiny Int-RA", "frozen MiniLM, zero-shot", "character n-gram TF-IDF",
                                    "multilingual USE, zero-shot"]
    assert result["queries"] == 3 and result["stickers"] == 5
    tiny = result["rows"]["tiny Int-RA"]
    assert tiny["MRR"]["seeds"] == 2 and tiny["MRR"]["std"] == 0.0  # the same bundle twice ranks the same
    tfidf = result["rows"]["character n-gram TF-IDF"]
    assert tfidf["R@1"]["mean"] == tfidf["MRR"]["mean"] == 100.0
    assert tfidf["reference_minus_row"]["mean"] == pytest.approx(tiny["MRR"]["mean"] - 100.0)
    for row in result["rows"].values():
        assert row["R@1"]["mean"] <= row["R@5"]["mean"] <= row["R@10"]["mean"]
        assert 100 / 5 <= row["MRR"]["mean"] <= 100
    rates = result["unk_rate"]
    assert rates["with CJK extension"] <= rates["without CJK extension"]
    page = markdown({"zh": result}, "python -m experiments.sticker_queries")
    assert "| character n-gram TF-IDF | 1 | 100.0 | 100.0 | 100.0 | 100.0 |" in page
    assert Row("x", np.array([[1, 2, 4]])).summary()["MRR"]["mean"] == pytest.approx(100 * (1 + 0.5 + 0.25) / 3)
    assert math.isclose(Row("x", np.array([[10, 11]])).summary()["R@10"]["mean"], 50.0)


def test_new_cjk_rows_start_at_their_nearest_english_words(tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    from training.cjk_init import init_cjk_rows, nearest_rows
    from training.encoders import extend_cjk, train_wordpiece

    base = train_wordpiece(["the cat sat on a mat", "a dog ran home", "happy cat and bird", "sad dog with fish"] * 20, 200)
    tok, added = extend_cjk(base, ["猫狗"])
    assert added == ["狗", "猫"]
    model = BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32))
    axes = {"cat": 0, "猫": 0, "dog": 1, "狗": 1}  # a stand-in multilingual encoder: one axis per meaning

    def encode(texts):
        out = np.full((len(texts), 4), 0.01, np.float32)
        for i, t in enumerate(texts):
            if t in axes:
                out[i, axes[t]] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    report = init_cjk_rows(model, tok, added, encode)
    rows = model.get_input_embeddings().weight
    assert report["rows"] == 2
    for ch, word in (("猫", "cat"), ("狗", "dog")):
        got, want = rows[tok.token_to_id(ch)], rows[tok.token_to_id(word)]
        assert torch.nn.functional.cosine_similarity(got, want, dim=0) > 0.99
    few, few_added = extend_cjk(train_wordpiece(["ab cd"] * 20, 60), ["猫"])
    assert init_cjk_rows(model, few, few_added, encode)["cjk_init"] == "mean"  # no English words to anchor to
    weights = torch.eye(3)
    mixed = nearest_rows(np.array([[1.0, 1.0, 0.0]]) / np.sqrt(2), np.eye(3), weights, k=2, temperature=1.0)
    assert torch.allclose(mixed, torch.tensor([[0.5, 0.5, 0.0]]))


def test_the_command_builds_the_dataset_and_refuses_an_unknown_language(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    src = _source(tmp_path)
    result = CliRunner().invoke(app, ["data", "sticker-queries", "--source", str(src), "--lang", "zh", "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "stickers_distractors_only" in result.output and len(load_dataset(tmp_path / "ds").split("test")) == 3
    bad = CliRunner().invoke(app, ["data", "sticker-queries", "--source", str(src), "--lang", "fr", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "expected one of zh, en" in bad.output
