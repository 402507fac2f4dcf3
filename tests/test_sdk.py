"""The runtime SDK on a tiny exported model: ranking, parity with PyTorch, threads, packs, errors."""

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import sdk
from sdk.context import ContextError, parse_context
from sdk.imageprep import ImageError, load_image
from sdk.pack import PackError, load_pack, merge_packs
from sdk.providers import CPU, CUDA, ProviderError, choose_providers
from sdk.ranker import Ranker, top_k


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
    from training.features import sticker_inputs
    from training.run_dir import load_run
    from training.scoring import score_conversations

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


@pytest.mark.parametrize("bad,message", [
    ("", "empty"), ("   \n", "empty"), ([], "empty"), ([" ", ""], "empty"),
    ([1, "x"], r"context\[0\]: expected a string, got int"),
    ([("A", None)], r"context\[0\] text: expected a string"),
    ([("A", "b", "c")], "must be \\(speaker, text\\)"),
    (b"\xff\xfe bad", "not valid UTF-8"),
    (42, "expected a string or a list"),
    ([{"speaker": "A"}], "needs a 'text' field"),
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


def test_provider_choice_and_fallback():
    import onnxruntime as ort

    real = ort.get_available_providers()
    auto = choose_providers("auto")
    assert auto.providers[0] == (CUDA if CUDA in real else CPU)
    if CUDA not in real:
        assert "CUDA not offered" in auto.reason and auto.default_precision == "int8"
        with pytest.raises(ProviderError, match="install onnxruntime-gpu"):
            choose_providers("cuda")
    gpu = choose_providers("auto", available=[CUDA, CPU])
    assert gpu.providers == (CUDA, CPU) and gpu.default_precision == "fp16" and gpu.device == "cuda"
    assert choose_providers("cpu", available=[CUDA, CPU]).providers == (CPU,)
    with pytest.raises(ProviderError, match="unknown providers value 'tpu'"):
        choose_providers("tpu")
    with pytest.raises(ProviderError, match="'FooExecutionProvider' is not available"):
        choose_providers(["FooExecutionProvider"])


def test_unknown_provider_in_rank(tiny_bundle, tiny_pack):
    with pytest.raises(ProviderError):
        Ranker(tiny_bundle, tiny_pack, providers="tpu")


def test_pack_from_a_folder_with_sidecar_shards_and_merge(tiny_bundle, synthetic_dir, tmp_path):
    folder = tmp_path / "stickers"
    folder.mkdir()
    ds = sdk.load_dataset(synthetic_dir, splits=[])
    side = {}
    for s in ds.stickers[:10]:
        shutil.copyfile(ds.image_path(s), folder / f"{s.id}.png")
        side[f"{s.id}.png"] = {"label": s.label, "attributes": dict(s.attributes)}
    (folder / "descriptions.json").write_text(json.dumps(side))
    full = sdk.build_pack(folder, tiny_bundle, tmp_path / "full", precision="fp32", providers="cpu", progress=False)
    assert len(full) == 10 and full.stickers[0].attributes == dict(ds.stickers[0].attributes)
    assert np.allclose(np.linalg.norm(full.embeddings, axis=1), 1, atol=2e-3)
    assert np.load(tmp_path / "full" / "embeddings.npy").dtype == np.float16
    s0 = sdk.build_pack(folder, tiny_bundle, tmp_path / "s0", precision="fp32", providers="cpu", shard=(0, 2), progress=False)
    s1 = sdk.build_pack(folder, tiny_bundle, tmp_path / "s1", precision="fp32", providers="cpu", shard=(1, 2), progress=False)
    assert len(s0) + len(s1) == 10
    merged = load_pack(merge_packs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged"))
    order = {sid: i for i, sid in enumerate(merged.ids)}
    assert set(order) == set(full.ids)
    assert np.allclose(merged.embeddings[[order[i] for i in full.ids]], full.embeddings, atol=1e-3)


def test_pack_errors_name_the_cause(tiny_bundle, tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    meta = json.loads((copy / "pack.json").read_text())
    first = copy / meta["stickers"][0]["file"]
    first.write_bytes(first.read_bytes() + b"x")
    with pytest.raises(PackError, match=r"stickers\[0\]: file .* does not match its sha256"):
        load_pack(copy)
    shutil.rmtree(copy)
    shutil.copytree(tiny_pack, copy)
    meta["stickers"][1]["file"] = "../../etc/passwd"
    (copy / "pack.json").write_text(json.dumps(meta))
    with pytest.raises(PackError, match=r"stickers\[1\]: path '../../etc/passwd' escapes the pack directory"):
        load_pack(copy)
    shutil.rmtree(copy)
    shutil.copytree(tiny_pack, copy)
    emb = np.load(copy / "embeddings.npy")
    np.save(copy / "embeddings.npy", emb[:, ::-1].copy())
    with pytest.raises(PackError, match="embeddings.npy: does not match its sha256"):
        load_pack(copy)
    with pytest.raises(PackError, match="pack.json: not found"):
        load_pack(tmp_path / "nothing")


def test_pack_built_by_another_model_is_rejected(tiny_bundle, tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    meta = json.loads((copy / "pack.json").read_text())
    meta["fingerprint"] = "0" * 32
    (copy / "pack.json").write_text(json.dumps(meta))
    with pytest.raises(PackError, match="built by model 0000.*rebuild the pack"):
        Ranker(tiny_bundle, copy, precision="fp32", providers="cpu")


@given(st.sampled_from(["count", "dim", "stickers", "fingerprint", "embeddings", "format_version"]),
       st.one_of(st.none(), st.integers(-3, 500), st.text(max_size=5), st.lists(st.integers(), max_size=3)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pack_loader_never_half_loads(tiny_pack, tmp_path_factory, key, value):
    copy = tmp_path_factory.mktemp("p") / "pack"
    shutil.copytree(tiny_pack, copy)
    meta = json.loads((copy / "pack.json").read_text())
    original = meta.get(key)
    meta[key] = value
    (copy / "pack.json").write_text(json.dumps(meta))
    try:
        pack = load_pack(copy)
    except PackError:
        return
    assert value == original or key == "fingerprint"  # loads only when the change is harmless
    assert pack.embeddings.shape == (pack.meta["count"], pack.meta["dim"])


def _write(path, img, **kw):
    img.save(path, **kw)
    return path


def test_bad_images_raise_image_error(tmp_path):
    good = _write(tmp_path / "ok.png", Image.new("RGB", (20, 20), "red"))
    assert load_image(good).image.size == (20, 20)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="junk.png: not a readable image"):
        load_image(tmp_path / "junk.png")
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png: unreadable or truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="missing.png: image file not found"):
        load_image(tmp_path / "missing.png")
    huge = _write(tmp_path / "huge.png", Image.new("1", (9000, 9000)))
    with pytest.raises(ImageError, match="huge.png: image is too large"):
        load_image(huge)
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    anim = tmp_path / "anim.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(anim)
    assert loaded.animated and "first frame" in loaded.notes[0]
    assert loaded.image.getpixel((0, 0))[0] > 200  # red: the first frame


def test_interrupted_pack_build_keeps_the_existing_pack(tiny_bundle, tiny_pack, synthetic_dir, tmp_path, monkeypatch):
    from sdk.bundle import Bundle

    target = tmp_path / "pack"
    shutil.copytree(tiny_pack, target)
    calls = {"n": 0}
    real = Bundle.sticker_vectors

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Bundle, "sticker_vectors", dies)
    with pytest.raises(KeyboardInterrupt):
        sdk.build_pack(synthetic_dir, tiny_bundle, target, precision="fp32", providers="cpu", progress=False)
    assert load_pack(target).ids == load_pack(tiny_pack).ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]


def test_top_k_is_exact():
    rng = np.random.default_rng(1)
    scores = rng.random((4, 1000)).astype(np.float32)
    idx, vals = top_k(scores, 10)
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


def test_cli_pack_and_rank(tiny_bundle, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from sdk.cli import app

    runner = CliRunner()
    out = tmp_path / "pack"
    result = runner.invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(out), "--providers", "cpu"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["pack", "info", str(out)])
    assert info.exit_code == 0 and json.loads(info.output)["stickers"] == 56
    ranked = runner.invoke(app, ["rank", "--pack", str(out), "--json", "--top-k", "3", "hello", "thank you so much"])
    assert ranked.exit_code == 0, ranked.output
    data = json.loads(ranked.output)
    assert len(data["matches"]) == 3 and data["precision"] == "int8" and data["provider"] == CPU
    table = runner.invoke(app, ["rank", "--pack", str(out), "so happy"])
    assert table.exit_code == 0 and "intention:" in table.output
    bad = runner.invoke(app, ["rank", "--pack", str(out), "   "])
    assert bad.exit_code == 2 and "empty" in bad.output


def test_sdk_ranks_in_a_process_without_torch(tiny_bundle, tiny_pack):
    code = f"""
import sys, sdk
r = sdk.rank(["hi", "so happy today"], {str(tiny_pack)!r}, model={str(tiny_bundle)!r}, providers="cpu")
assert len(r.matches) == 5
bad = [m for m in ("torch", "transformers", "optimum") if m in sys.modules]
assert not bad, bad
"""
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_a_rows_result_does_not_depend_on_its_batch(tiny_bundle, precision):
    from sdk.bundle import Bundle

    bundle = Bundle(tiny_bundle, precision=precision, providers="cpu")
    alone = bundle.encode_contexts([["so happy today"]])
    batched = bundle.encode_contexts([["so happy today"], ["a much longer context that pads the first row " * 6], ["我好难过"]])
    assert np.abs(alone[0] - batched[0]).max() < 1e-5
    kind = json.loads((tiny_bundle / "manifest.json").read_text())["precision_notes"]["int8"]["kind"]
    assert bundle.row_by_row == (precision == "int8" and kind == "dynamic")
    pixels = np.random.default_rng(0).random((3, 3, 32, 32)).astype(np.float32)
    assert np.abs(bundle.regions(pixels[:1])[0] - bundle.regions(pixels)[0]).max() < 1e-5
