"""The usage prior and label term (sdk/scoring.py): the formula, packs carrying counts, the SDK."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk.labels import LABELS
from sdk.pack import PackError, load_pack, merge_packs
from sdk.ranker import Ranker
from sdk.scoring import ScoreTerms, ScoreWeights, log_prior, log_softmax


def test_terms_add_the_weighted_prior_and_label_log_probabilities():
    rng = np.random.default_rng(0)
    cos = rng.normal(size=(3, 4)).astype(np.float32)
    logits = rng.normal(size=(3, len(LABELS)))
    labels, usage = [0, 5, -1, 5], np.array([10.0, 0.0, 3.0, 1.0])
    w = ScoreWeights(prior=0.3, label=0.7)
    got = ScoreTerms(w, labels, usage, has_head=True).scores(cos, logits)
    lp, prior = log_softmax(logits), log_prior(usage, w.smoothing)
    label_term = np.stack([lp[:, 0], lp[:, 5], np.full(3, math.log(1 / len(LABELS))), lp[:, 5]], 1)
    assert np.allclose(got, cos + 0.3 * prior[None, :] + 0.7 * label_term, atol=1e-5)
    # the augmented product is the same number (what an ANN index over inner products ranks by)
    terms = ScoreTerms(w, labels, usage, has_head=True)
    aug = np.hstack([np.eye(3, dtype=np.float32), terms.query_extra(logits, 3)]) @ np.hstack([cos.T, terms.sticker_extra()]).T
    assert np.allclose(aug, got, atol=1e-5)


def test_terms_are_off_without_counts_without_a_head_or_with_zero_weights():
    cos = np.arange(8, dtype=np.float32).reshape(2, 4)
    logits = np.zeros((2, len(LABELS)))
    w = ScoreWeights(prior=1.0, label=1.0)
    assert ScoreTerms(ScoreWeights(), [0, 1, 2, 3], np.ones(4), True).scores(cos, logits) is cos
    no_counts = ScoreTerms(w, [0, 1, 2, 3], None, has_head=False)
    assert not no_counts.active and no_counts.scores(cos, None) is cos
    prior_only = ScoreTerms(w, [0, 1, 2, 3], np.array([3.0, 1, 0, 0]), has_head=False).scores(cos, None)
    assert np.allclose(prior_only - cos, log_prior(np.array([3.0, 1, 0, 0]), 0.5)[None, :])


@pytest.mark.parametrize("bad, message", [
    ({"prior_weight": -1}, "prior_weight"), ({"label_weight": "0.5"}, "label_weight"), ({"prior_smoothing": 0}, "prior_smoothing"),
    ([1, 2], "must be an object"), ({"prior_weight": float("nan")}, "prior_weight"), ({"label_weight": True}, "label_weight"),
])
def test_bad_scoring_weights_name_the_field(bad, message):
    with pytest.raises(sdk.BundleError, match=message):
        ScoreWeights.from_json(bad, "manifest.json", sdk.BundleError)


def test_choose_weights_finds_the_prior_when_popularity_decides(synthetic_dir):
    from sdk.dataset import load_dataset
    from training.score_weights import choose_weights

    ds = load_dataset(synthetic_dir)
    usage = ds.usage_counts()
    popular = max(usage, key=usage.get)
    gold = np.full(50, ds.sticker_index()[popular])
    noise = np.random.default_rng(0).normal(scale=0.05, size=(50, len(ds.stickers)))
    weights, tried = choose_weights(noise, None, ds, gold)
    assert weights.prior > 0 and weights.label == 0  # no head: no label term tried
    assert len(tried) > 1 and all(t["label_weight"] == 0 for t in tried)


def test_macro_f1_objective_refuses_a_prior_that_only_helps_the_popular_sticker(synthetic_dir):
    from sdk.dataset import load_dataset
    from training.score_weights import choose_weights

    ds = load_dataset(synthetic_dir)
    n = len(ds.stickers)
    gold = np.arange(200) % n  # every sticker is gold equally often: popularity cannot help
    rng = np.random.default_rng(0)
    cosines = 0.05 * np.eye(n)[gold] + rng.normal(scale=0.01, size=(200, n))
    weights, tried = choose_weights(cosines, None, ds, gold, objective_name="macro_f1")
    assert weights.prior == 0
    assert all("macro_F1" in t for t in tried)
    assert max(t["macro_F1"] for t in tried) == tried[0]["macro_F1"]


def test_dataset_pack_carries_training_usage_and_labels(tiny_pack, synthetic_dir):
    from sdk.dataset import load_dataset

    ds = load_dataset(synthetic_dir)
    pack = load_pack(tiny_pack)
    assert pack.usage == {k: float(v) for k, v in ds.usage_counts().items()}
    assert sum(pack.usage.values()) == len(ds.split("train"))
    assert pack.label_ids() == ds.sticker_labels()[0]


def test_the_prior_moves_used_stickers_up_and_is_off_without_counts(tiny_bundle, synthetic_dir, tmp_path):
    ids = [json.loads(line)["id"] for line in (synthetic_dir / "stickers.jsonl").read_text().splitlines()]
    favourite = ids[7]
    plain = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "plain", precision="fp32", providers="cpu", progress=False,
                           usage={})
    used = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "used", precision="fp32", providers="cpu", progress=False,
                          usage={favourite: 1000})
    strong = ScoreWeights(prior=1.0)
    contexts = ["so happy today", "I am scared", "thank you"]
    without = Ranker(tiny_bundle, plain, precision="fp32", providers="cpu", weights=strong)
    assert without.terms.use_prior  # all-zero counts are counts: the prior is on, but flat
    flat = Ranker(tiny_bundle, plain, precision="fp32", providers="cpu", weights=ScoreWeights())
    a, b = flat.score_matrix(contexts)[1], without.score_matrix(contexts)[1]
    assert np.array_equal(np.argsort(-a, 1)[:, :5], np.argsort(-b, 1)[:, :5])
    with_prior = Ranker(tiny_bundle, used, precision="fp32", providers="cpu", weights=strong)
    assert all(r.matches[0].sticker_id == favourite for r in with_prior.rank_many(contexts))
    # the scores the ranker reports are the ones score_matrix gives
    full = with_prior.score_matrix(contexts)[1]
    assert with_prior.rank(contexts[0]).matches[0].score == pytest.approx(float(full[0].max()), abs=1e-5)


def test_usage_field_round_trips_and_is_validated(tiny_pack, tmp_path):
    meta = json.loads((tiny_pack / "pack.json").read_text())
    assert meta["usage"]
    for bad, message in [({"no-such-sticker": 3}, "not in the pack"), ({meta["stickers"][0]["id"]: -1}, ">= 0"),
                         ({meta["stickers"][0]["id"]: "many"}, "finite count"), ([1, 2], "JSON object"),
                         ({meta["stickers"][0]["id"]: True}, "finite count")]:
        pack = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        import shutil

        shutil.copytree(tiny_pack, pack)
        (pack / "pack.json").write_text(json.dumps({**meta, "usage": bad}))
        with pytest.raises(PackError, match=message):
            load_pack(pack)


def test_bad_usage_counts_raise_pack_error_and_the_cli_exits_2(tiny_bundle, synthetic_dir, tmp_path):
    from sdk.cli import app

    with pytest.raises(PackError, match="not in the pack"):
        sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "x", usage={"nope": 1}, progress=False)
    assert not (tmp_path / "x").exists()
    bad = tmp_path / "usage.json"
    bad.write_text('{"a": ')
    result = CliRunner().invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out",
                                      str(tmp_path / "y"), "--usage", str(bad)])
    assert result.exit_code == 2 and "usage.json" in result.output
    ids = [json.loads(line)["id"] for line in (synthetic_dir / "stickers.jsonl").read_text().splitlines()]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({ids[0]: 5, ids[1]: 2}))
    result = CliRunner().invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out",
                                      str(tmp_path / "z"), "--usage", str(good), "--providers", "cpu"])
    assert result.exit_code == 0, result.output
    assert load_pack(tmp_path / "z").usage == {ids[0]: 5.0, ids[1]: 2.0}


def test_usage_survives_pack_merge(tiny_bundle, synthetic_dir, tmp_path):
    shards = [sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / f"s{i}", shard=(i, 2), precision="fp32", providers="cpu",
                             progress=False) for i in range(2)]
    whole = load_pack(merge_packs([s.root for s in shards], tmp_path / "merged"))
    expected = {k: v for s in shards for k, v in s.usage.items()}
    assert whole.usage == expected and sum(whole.usage.values()) > 0
    # a shard without counts adds zeros: the merged pack still has the prior
    bare = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "bare", shard=(1, 2), precision="fp32", providers="cpu",
                          progress=False, usage={})
    meta = json.loads((bare.root / "pack.json").read_text())
    meta.pop("usage")
    (bare.root / "pack.json").write_text(json.dumps(meta))
    mixed = load_pack(merge_packs([shards[0].root, bare.root], tmp_path / "mixed"))
    assert mixed.usage == shards[0].usage


def test_bundle_carries_the_weights_chosen_on_validation(tiny_run_dir, tiny_bundle):
    chosen = json.loads((tiny_run_dir / "scoring.json").read_text())
    assert chosen["chosen_on"] == "validation" and chosen["grid"]
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["scoring"] == {k: chosen[k] for k in ("prior_weight", "label_weight", "prior_smoothing")}
    assert sdk.Bundle(tiny_bundle, precision="fp32").score_weights == ScoreWeights(
        chosen["prior_weight"], chosen["label_weight"], chosen["prior_smoothing"])
