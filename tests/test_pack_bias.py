"""A pack's per-sticker bias (pack.json's ``bias``): the score formula, ranking, refusals, merge,
the stored ANN index and the CLI."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk.labels import LABELS
from sdk.pack import PackError, load_pack, merge_packs
from sdk.ranker import Ranker
from sdk.scoring import ScoreTerms, ScoreWeights, log_prior

CONTEXTS = ["so happy today", "I am scared", "thank you", "what a day"]


def _ids(synthetic_dir):
    return [json.loads(line)["id"] for line in (synthetic_dir / "stickers.jsonl").read_text().splitlines()]


def test_bias_adds_to_the_score_and_to_the_augmented_product():
    rng = np.random.default_rng(1)
    cos = rng.normal(size=(3, 4)).astype(np.float32)
    logits = rng.normal(size=(3, len(LABELS)))
    usage, bias = np.array([4.0, 0.0, 1.0, 2.0]), np.array([0.0, 0.3, -0.2, 0.0])
    w = ScoreWeights(prior=0.5, label=0.2)
    terms = ScoreTerms(w, [0, 1, -1, 2], usage, True, bias)
    plain = ScoreTerms(w, [0, 1, -1, 2], usage, True).scores(cos, logits)
    got = terms.scores(cos, logits)
    assert np.allclose(got - plain, bias[None, :], atol=1e-6)
    aug = np.hstack([np.eye(3, dtype=np.float32), terms.query_extra(logits, 3)]) @ np.hstack([cos.T, terms.sticker_extra()]).T
    assert np.allclose(aug, got, atol=1e-5)
    # a bias alone turns the sticker-side term on; an all-zero one leaves the cosine untouched
    alone = ScoreTerms(ScoreWeights(), [0, 1, 2, 3], None, False, bias)
    assert alone.active and np.allclose(alone.scores(cos, None), cos + bias[None, :])
    zeros = ScoreTerms(ScoreWeights(), [0, 1, 2, 3], None, False, np.zeros(4))
    assert not zeros.active and zeros.scores(cos, None) is cos
    assert np.allclose(terms.prior_at(np.array([1, 2])), 0.5 * log_prior(usage, 0.5)[[1, 2]] + bias[[1, 2]])


def test_a_biased_pack_moves_each_score_by_its_bias(tiny_bundle, synthetic_dir, tmp_path):
    ids = _ids(synthetic_dir)
    lifted, lowered = ids[3], ids[11]
    plain = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "plain", precision="fp32", providers="cpu", progress=False)
    biased = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "biased", precision="fp32", providers="cpu", progress=False,
                            bias={lifted: 5.0, lowered: -0.25})
    assert biased.meta.bias == {lifted: 5.0, lowered: -0.25}
    assert json.loads((biased.root / "pack.json").read_text())["bias"] == {lifted: 5.0, lowered: -0.25}
    a = Ranker(tiny_bundle, plain, precision="fp32", providers="cpu").score_matrix(CONTEXTS)[1]
    ranker = Ranker(tiny_bundle, biased, precision="fp32", providers="cpu")
    b = ranker.score_matrix(CONTEXTS)[1]
    expected = np.zeros(len(ids))
    expected[ids.index(lifted)], expected[ids.index(lowered)] = 5.0, -0.25
    assert np.allclose(b - a, expected[None, :], atol=1e-5)
    results = ranker.rank_many(CONTEXTS, explain=True)
    assert all(r.matches[0].sticker_id == lifted for r in results)
    # the explanation counts the bias with the prior: the parts still add up to the score
    top = results[0].matches[0]
    assert top.why is not None and top.why.prior_term > 4.0


def test_bad_biases_are_refused_naming_the_sticker(tiny_bundle, synthetic_dir, tiny_pack, tmp_path):
    first = _ids(synthetic_dir)[0]
    with pytest.raises(PackError, match="not in the pack"):
        sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "x", bias={"nope": 1.0}, progress=False)
    assert not (tmp_path / "x").exists()
    meta = json.loads((tiny_pack / "pack.json").read_text())
    for i, (bad, message) in enumerate([({first: "high"}, "finite number"), ({first: True}, "finite number"),
                                         ({first: 1e9}, "within"), ([1], "JSON object"), ({"nope": 0.1}, "not in the pack")]):
        pack = tmp_path / f"p{i}"
        shutil.copytree(tiny_pack, pack)
        (pack / "pack.json").write_text(json.dumps({**meta, "bias": bad}))
        with pytest.raises(PackError, match=message):
            load_pack(pack)


def test_biases_survive_merge_and_the_cli_writes_and_shows_them(tiny_bundle, synthetic_dir, tmp_path):
    from sdk.cli import app

    ids = _ids(synthetic_dir)
    shards = [sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / f"s{i}", shard=(i, 2), precision="fp32", providers="cpu",
                             progress=False, bias={ids[i]: 0.5 + i}) for i in range(2)]
    # a shard keeps only the biases of its own stickers
    assert shards[0].meta.bias == {ids[0]: 0.5} and shards[1].meta.bias == {ids[1]: 1.5}
    merged = load_pack(merge_packs([s.root for s in shards], tmp_path / "merged"))
    assert merged.meta.bias == {ids[0]: 0.5, ids[1]: 1.5}
    file = tmp_path / "bias.json"
    file.write_text(json.dumps({ids[2]: -0.1}))
    result = CliRunner().invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out",
                                      str(tmp_path / "cli"), "--bias", str(file), "--providers", "cpu"])
    assert result.exit_code == 0, result.output
    assert "biases for 1 stickers" in result.output
    assert load_pack(tmp_path / "cli").meta.bias == {ids[2]: -0.1}
    info = CliRunner().invoke(app, ["pack", "info", str(tmp_path / "cli")])
    assert json.loads(info.output)["bias"] == {"stickers": 1}
    file.write_text('{"x": ')
    bad = CliRunner().invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out",
                                   str(tmp_path / "bad"), "--bias", str(file)])
    assert bad.exit_code == 2 and "bias.json" in bad.output


def test_the_stored_ann_index_ranks_by_the_biased_score(tiny_bundle, synthetic_dir, tmp_path):
    pytest.importorskip("faiss")
    ids = _ids(synthetic_dir)
    pack = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "ann", precision="fp32", providers="cpu", progress=False,
                          ann=True, bias={ids[5]: 3.0})
    assert pack.meta.ann is not None
    ann = Ranker(tiny_bundle, pack.root, precision="fp32", providers="cpu")  # loads the stored index: its digest matches
    exact = Ranker(tiny_bundle, pack.root, precision="fp32", providers="cpu", ann=False)
    for got, want in zip(ann.rank_many(CONTEXTS, top_k=3), exact.rank_many(CONTEXTS, top_k=3)):
        assert got.search == "ann" and got.matches[0].sticker_id == want.matches[0].sticker_id == ids[5]
