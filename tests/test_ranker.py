"""Ranking: every context form, parity with PyTorch, threads, exact and ANN search, the cache, arguments."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import FOLDER_SIZE, image_folder

import sdk
from sdk.context import ContextError
from sdk.dataset import load_dataset
from sdk.errors import ArgumentError, IntraError
from sdk.pack import load_pack
from sdk.providers import CPU
from sdk.ranker import Ranker, best_rows, get_ranker


def test_rank_accepts_every_context_form_with_the_same_result(tiny_pack, tiny_bundle):
    a = sdk.rank("thank you so much", tiny_pack, model=tiny_bundle, precision="fp32")
    b = sdk.rank(["thank you so much"], tiny_pack, model=tiny_bundle, precision="fp32")
    c = sdk.rank([("A", "thank you so much")], tiny_pack, model=tiny_bundle, precision="fp32")
    d = sdk.rank([{"speaker": "A", "text": "thank you so much"}], tiny_pack, model=tiny_bundle, precision="fp32")
    e = sdk.rank([b"thank you so much"], tiny_pack, model=tiny_bundle, precision="fp32")
    ids = [[m.sticker_id for m in r.matches] for r in (a, b, c, d, e)]
    assert all(x == ids[0] for x in ids) and len(ids[0]) == 5
    assert a.intention in sdk.LABELS and 0 < a.intention_probability <= 1
    assert a.provider == CPU and a.precision == "fp32"
    assert all(m.file.is_file() for m in a.matches)
    scores = [m.score for m in a.matches]
    assert scores == sorted(scores, reverse=True)


def test_fp32_bundle_ranks_like_pytorch_and_int8_within_the_gate(tiny_run_dir, tiny_bundle, tiny_pack, synthetic_dir):
    from export.parity import topk_agreement
    from sdk.dataset import load_dataset
    from training.catalog_scores import score_conversations
    from training.model_inputs import sticker_inputs
    from training.run_dir import load_run

    ds = load_dataset(synthetic_dir)
    convs = ds.split("validation")[:60]
    model, tok, image_settings, _ = load_run(tiny_run_dir)
    torch_scores, _ = score_conversations(model, tok, sticker_inputs(ds, image_settings), convs)
    pack = load_pack(tiny_pack)
    assert pack.ids == ds.sticker_ids
    fp32 = Ranker(tiny_bundle, pack, precision="fp32", providers="cpu")
    int8 = Ranker(tiny_bundle, pack, precision="int8", providers="cpu")
    contexts = [[t.text for t in c.context] for c in convs]
    know = [c.knowledge for c in convs]
    fp32_scores = fp32.query(contexts, know)[1] @ pack.embeddings.T
    int8_scores = int8.query(contexts, know)[1] @ pack.embeddings.T
    # the pack stores float16 vectors: rankings agree, scores to ~1e-3
    assert topk_agreement(fp32_scores, torch_scores) >= 0.98
    assert np.abs(fp32_scores - torch_scores).max() < 5e-3
    assert topk_agreement(int8_scores, fp32_scores) >= 0.95
    results = fp32.rank_many(contexts, top_k=5, knowledge=know)
    logits = fp32.query(contexts, know)[0]
    final = fp32.terms.scores(fp32_scores, logits)  # cosine plus the bundle's prior and label term
    assert [r.matches[0].sticker_id for r in results] == [pack.ids[i] for i in final.argmax(1)]


def test_rank_many_matches_rank_and_is_thread_safe(tiny_bundle, tiny_pack):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="int8", providers="cpu", threads=1)
    contexts = [["hi", "so happy today"], "I am so scared", ["我好难过"], [("A", "wait, what do you mean")], "thank you"] * 4
    single = [ranker.rank(c, top_k=3) for c in contexts]
    batched = ranker.rank_many(contexts, top_k=3, batch_size=7)
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda c: ranker.rank(c, top_k=3), contexts))
    key = lambda rs: [[(m.sticker_id, round(m.score, 4)) for m in r.matches] for r in rs]  # noqa: E731
    assert key(single) == key(threaded)
    assert [[m.sticker_id for m in r.matches] for r in single] == [[m.sticker_id for m in r.matches] for r in batched]


def test_rank_many_agrees_with_rank_at_int8(tiny_bundle, tiny_pack, synthetic_dir):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="int8", providers="cpu")
    convs = load_dataset(synthetic_dir, splits=["test"]).split("test")[:64]
    contexts = [[t.text for t in c.context] for c in convs]
    many = ranker.rank_many(contexts, top_k=5, batch_size=16)
    for ctx, got in zip(contexts, many):
        assert [m.sticker_id for m in ranker.rank(ctx).matches] == [m.sticker_id for m in got.matches]


def test_top_k_is_exact():
    rng = np.random.default_rng(1)
    scores = rng.random((4, 1000)).astype(np.float32)
    idx, vals = best_rows(scores, 10)
    assert (idx == np.argsort(-scores, axis=1)[:, :10]).all()
    assert np.allclose(vals, np.sort(scores, axis=1)[:, ::-1][:, :10])


def test_ann_search_agrees_with_exact(tiny_bundle, tiny_pack):
    pytest.importorskip("faiss", reason="the 'ann' extra (faiss-cpu) is not installed")
    exact = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu", ann=False)
    approx = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu", ann=True)
    contexts = ["so happy", "I am scared", "thanks!", "ugh, this again", "wow, impressive"]
    a = exact.rank_many(contexts, top_k=10)
    b = approx.rank_many(contexts, top_k=10)
    overlap = np.mean([len({m.sticker_id for m in x.matches} & {m.sticker_id for m in y.matches}) / 10 for x, y in zip(a, b)])
    assert overlap >= 0.9 and b[0].search == "ann"


def test_sdk_ranks_in_a_process_without_torch(tiny_bundle, tiny_pack):
    code = f"""
import sys, sdk
r = sdk.rank(["hi", "so happy today"], {str(tiny_pack)!r}, model={str(tiny_bundle)!r}, providers="cpu")
assert len(r.matches) == 5
bad = [m for m in ("torch", "transformers", "optimum") if m in sys.modules]
assert not bad, bad
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rank_by_path_sees_a_rebuilt_pack(tiny_bundle, synthetic_dir, tmp_path):
    pack = tmp_path / "pack"
    sdk.build_pack(image_folder(synthetic_dir, tmp_path / "a"), tiny_bundle, pack, precision="fp32", providers="cpu", progress=False)
    first = sdk.rank("so happy today", pack, top_k=FOLDER_SIZE, providers="cpu", precision="fp32")
    assert all(m.file.is_file() for m in first.matches)
    sdk.build_pack(image_folder(synthetic_dir, tmp_path / "b", start=FOLDER_SIZE), tiny_bundle, pack, precision="fp32",
                   providers="cpu", progress=False)
    second = sdk.rank("so happy today", pack, top_k=FOLDER_SIZE, providers="cpu", precision="fp32")
    assert {m.sticker_id for m in second.matches} == set(load_pack(pack).ids)
    assert not {m.sticker_id for m in first.matches} & {m.sticker_id for m in second.matches}
    assert all(m.file.is_file() for m in second.matches)


def test_rank_with_a_pack_object_reuses_its_ranker(tiny_bundle, tiny_pack):
    pack = load_pack(tiny_pack)
    a = get_ranker(pack, tiny_bundle, providers="cpu", precision="fp32")
    b = get_ranker(pack, tiny_bundle, providers="cpu", precision="fp32")
    assert a is b
    assert get_ranker(load_pack(tiny_pack), tiny_bundle, providers="cpu", precision="fp32") is not a
    assert sdk.rank("hi", pack, model=tiny_bundle, providers="cpu", precision="fp32").matches[0].sticker_id in pack.ids


@pytest.mark.parametrize("call,error,message", [
    (lambda r: r.rank("a\ud800b"), ContextError, "not encodable as UTF-8"),
    (lambda r: r.rank(["ok", ("A", "x\udcff")]), ContextError, r"context\[1\]: not encodable"),
    (lambda r: r.rank("hi", knowledge=["xIntent"]), ContextError, "knowledge"),
    (lambda r: r.rank("hi", knowledge={"xIntent": 5}), ContextError, r"knowledge\[0\].xIntent: expected a list"),
    (lambda r: r.rank("hi", knowledge={"oWant": ["x"]}), ContextError, "unknown relation 'oWant'"),
    (lambda r: r.rank("hi", top_k="5"), ArgumentError, "top_k must be an integer"),
    (lambda r: r.rank("hi", top_k=0), ArgumentError, "top_k"),
    (lambda r: r.rank_many(["hi"], batch_size=0), ArgumentError, "batch_size"),
    (lambda r: r.rank_many(5), ContextError, "expects a list of contexts"),
])
def test_bad_arguments_raise_documented_errors(tiny_bundle, tiny_pack, call, error, message):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    with pytest.raises(error, match=message):
        call(ranker)


@pytest.mark.parametrize("options,message", [
    ({"topk": 5}, "unknown option"), ({"providers": 5}, "providers must be"), ({"precision": 8}, "precision must be"),
    ({"ann": "yes"}, "ann must be"), ({"mode": 3}, "mode must be"), ({"weights": {"prior_weight": 1}}, "weights must be"),
])
def test_sdk_rank_checks_its_options(tiny_bundle, tiny_pack, options, message):
    with pytest.raises(IntraError, match=message):
        sdk.rank("hi", tiny_pack, model=tiny_bundle, **options)
    with pytest.raises(ArgumentError, match="pack must be"):
        sdk.rank("hi", 42)


def test_diverse_keeps_near_duplicates_out_of_the_top_k(tiny_bundle, tiny_pack, tmp_path):
    """Copies of the best sticker crowd the plain top 5; diverse=True keeps one of them."""
    import shutil

    from helpers import save_vectors

    from sdk.diversity import drop_near_duplicates

    context = ["thank you so much, you saved my day"]
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    pack = load_pack(copy)
    ids = list(pack.ids)
    rng = np.random.default_rng(0)  # well-spread vectors (the tiny model's own are nearly parallel)
    emb = rng.standard_normal(pack.embeddings.shape).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    save_vectors(copy, emb.astype(np.float16))
    plain = Ranker(tiny_bundle, copy, precision="fp32", providers="cpu").rank(context, top_k=5)
    best = ids.index(plain.matches[0].sticker_id)
    others = [ids.index(m.sticker_id) for m in plain.matches[1:]]
    emb[others] = emb[best]  # the runners-up become copies of the winner
    save_vectors(copy, emb.astype(np.float16))
    dup = Ranker(tiny_bundle, copy, precision="fp32", providers="cpu")
    assert [m.sticker_id for m in dup.rank(context, top_k=5, diverse=False).matches] == \
        [m.sticker_id for m in dup.rank(context, top_k=5).matches]
    crowded = [m.sticker_id for m in dup.rank(context, top_k=5).matches]
    # the copies crowd the plain top 5 (not all of it: the label and prior terms still differ per sticker)
    assert sum(ids.index(s) in [best, *others] for s in crowded) >= 3
    spread = dup.rank(context, top_k=5, diverse=True)
    kept = [ids.index(m.sticker_id) for m in spread.matches]
    assert len(kept) == 5 and sum(i in [best, *others] for i in kept) == 1
    vectors = dup.pack.embeddings
    assert max(float(vectors[a] @ vectors[b]) for a in kept for b in kept if a != b) <= 0.98
    # same scores as the plain ranking for what is kept, best first
    assert [m.score for m in spread.matches] == sorted((m.score for m in spread.matches), reverse=True)
    assert spread.matches[0].sticker_id == crowded[0]

    # the helper on its own: -1 padding skipped, short rows when the candidates run out
    idx, sc = drop_near_duplicates(np.array([[0, -1, 1, 2]]), np.array([[3.0, 0.0, 2.0, 1.0]]),
                                   np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32), top_k=3)
    assert idx[0].tolist() == [0, 2] and sc[0].tolist() == [3.0, 1.0]
    with pytest.raises(ArgumentError, match="diverse_threshold"):
        dup.rank(context, diverse=True, diverse_threshold=1.5)
    with pytest.raises(ArgumentError, match="diverse must be True or False"):
        dup.rank(context, diverse="yes")  # type: ignore[arg-type]
