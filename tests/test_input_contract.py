"""Hostile input: nothing silent, nothing unbounded, and every failure an IntraError subclass."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import sdk
from sdk.bundle import Bundle, BundleError
from sdk.context import MAX_CONTEXT_CHARS, MAX_KNOWLEDGE_CHARS, ContextError, parse_context, parse_knowledge
from sdk.errors import ArgumentError, DatasetError, IntraError
from sdk.imageprep import load_image
from sdk.manifest import BundleManifest, fingerprint
from sdk.pack import PackError, load_pack
from sdk.ranker import Ranker, get_ranker

FOLDER_SIZE = 6


def _folder(synthetic_dir: Path, dest: Path, n: int = FOLDER_SIZE, start: int = 0) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((synthetic_dir / "images").iterdir())[start:start + n]:
        shutil.copyfile(p, dest / p.name)
    return dest


def _rewrite(pack: Path, change) -> None:
    """Apply `change` to pack.json (and its embeddings), keeping every sha256 consistent."""
    meta = json.loads((pack / "pack.json").read_text())
    change(meta)
    (pack / "pack.json").write_text(json.dumps(meta))


def _save_vectors(pack: Path, emb: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    (pack / "embeddings.npy").write_bytes(buf.getvalue())
    _rewrite(pack, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(pack / "embeddings.npy")))


# ------------------------------------------------------------------ silent wrong results
def test_16_bit_png_is_scaled_not_blank(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    Image.fromarray((ramp // 257).astype(np.uint8)).save(tmp_path / "g8.png")
    wide = np.asarray(load_image(tmp_path / "g16.png").image, dtype=np.int16)
    narrow = np.asarray(load_image(tmp_path / "g8.png").image, dtype=np.int16)
    assert wide.min() == 0 and wide.max() == 255
    assert np.abs(wide - narrow).max() <= 1


def test_rank_by_path_sees_a_rebuilt_pack(tiny_bundle, synthetic_dir, tmp_path):
    pack = tmp_path / "pack"
    sdk.build_pack(_folder(synthetic_dir, tmp_path / "a"), tiny_bundle, pack, precision="fp32", providers="cpu", progress=False)
    first = sdk.rank("so happy today", pack, top_k=FOLDER_SIZE, providers="cpu", precision="fp32")
    assert all(m.file.is_file() for m in first.matches)
    sdk.build_pack(_folder(synthetic_dir, tmp_path / "b", start=FOLDER_SIZE), tiny_bundle, pack, precision="fp32",
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


def test_a_scaled_embedding_row_is_refused(tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    emb = np.load(copy / "embeddings.npy")
    emb[3] *= 50
    _save_vectors(copy, emb)
    with pytest.raises(PackError, match=r"row 3 has length 50"):
        load_pack(copy)


def test_batch_size_and_shards_do_not_change_a_packs_vectors(tiny_bundle, synthetic_dir, tmp_path):
    folder = _folder(synthetic_dir, tmp_path / "src", n=9)
    for precision in ("fp32", "int8"):
        one = sdk.build_pack(folder, tiny_bundle, tmp_path / f"{precision}-b1", batch_size=1, precision=precision,
                             providers="cpu", progress=False, dtype="float32")
        seven = sdk.build_pack(folder, tiny_bundle, tmp_path / f"{precision}-b7", batch_size=7, precision=precision,
                               providers="cpu", progress=False, dtype="float32")
        shards = [sdk.build_pack(folder, tiny_bundle, tmp_path / f"{precision}-s{i}", shard=(i, 2), precision=precision,
                                 providers="cpu", progress=False, dtype="float32") for i in range(2)]
        merged = load_pack(sdk.merge_packs([s.root for s in shards], tmp_path / f"{precision}-merged"))
        order = [merged.ids.index(i) for i in one.ids]
        assert np.abs(one.embeddings - seven.embeddings).max() < 1e-5
        assert np.abs(one.embeddings - merged.embeddings[order]).max() < 1e-5


def test_rank_many_agrees_with_rank_at_int8(tiny_bundle, tiny_pack, synthetic_dir):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="int8", providers="cpu")
    convs = sdk.load_dataset(synthetic_dir, splits=["test"]).split("test")[:64]
    contexts = [[t.text for t in c.context] for c in convs]
    many = ranker.rank_many(contexts, top_k=5, batch_size=16)
    for ctx, got in zip(contexts, many):
        assert [m.sticker_id for m in ranker.rank(ctx).matches] == [m.sticker_id for m in got.matches]


# ------------------------------------------------------------------ unbounded work
def test_knowledge_is_capped(tiny_bundle, tiny_pack):
    huge = {"xIntent": ["to be kind " * 100] * 10_000, "xReact": "happy " * 200_000}
    kept = parse_knowledge(huge)
    assert sum(len(t) for ts in kept.values() for t in ts) <= MAX_KNOWLEDGE_CHARS
    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    assert len(ranker.rank("thanks a lot", knowledge=huge).matches) == 5


def test_a_very_long_context_keeps_its_newest_turns():
    turns = [f"turn {i} " + "x" * 40 for i in range(10_000)]
    kept = parse_context(turns)
    assert kept[-1] == turns[-1].strip() and len(kept) <= 64
    one = parse_context("y" * (MAX_CONTEXT_CHARS * 3) + "END")
    assert len(one) == 1 and len(one[0]) == MAX_CONTEXT_CHARS and one[0].endswith("END")


@pytest.mark.parametrize("threads", [0, 1000, -1, "2", 2.0, True])
def test_threads_are_checked_when_the_bundle_is_built(tiny_bundle, threads):
    with pytest.raises(ArgumentError, match="threads must be an integer from 1 to"):
        Bundle(tiny_bundle, precision="fp32", providers="cpu", threads=threads)


# ------------------------------------------------------------------ the error contract
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


def test_a_sidecar_entry_of_the_wrong_type_names_the_file(tiny_bundle, synthetic_dir, tmp_path):
    folder = _folder(synthetic_dir, tmp_path / "src", n=2)
    name = sorted(p.name for p in folder.iterdir())[0]
    for entry, message in (("smiling cat", "expected an object"), ({"attributes": ["x"]}, "'attributes' must be an object"),
                           ({"id": 7}, "'id' must be a non-empty string"), ({"label": ["joy"]}, "unknown label")):
        (folder / "descriptions.json").write_text(json.dumps({name: entry}))
        with pytest.raises(DatasetError, match=f"descriptions of {name}: .*{message}"):
            sdk.build_pack(folder, tiny_bundle, tmp_path / "out", precision="fp32", providers="cpu", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(count="56"), r"field 'count' must be an integer, got string"),
    (lambda m: m["stickers"][2].update(attributes="smile"), r"field 'stickers\[2\].attributes' must be an object"),
    (lambda m: m["stickers"][0].update(notes=[1]), r"field 'stickers\[0\].notes\[0\]' must be a string"),
    (lambda m: m["embeddings"].update(sha256=None), r"field 'embeddings.sha256' must be a string, got null"),
    (lambda m: m.pop("dim"), r"field 'dim' is missing"),
])
def test_pack_json_fields_of_the_wrong_type_are_named(tiny_pack, tmp_path, change, message):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    _rewrite(copy, change)
    with pytest.raises(PackError, match=message):
        load_pack(copy)


def test_deeply_nested_json_is_a_pack_error(tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    (copy / "pack.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PackError, match="nested too deeply"):
        load_pack(copy)


def test_embeddings_that_are_not_what_the_header_says(tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    emb = np.load(copy / "embeddings.npy")
    buf = io.BytesIO()
    np.savez(buf, emb=emb)
    (copy / "embeddings.npy").write_bytes(buf.getvalue())
    _rewrite(copy, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError, match="not a readable .npy"):
        load_pack(copy)
    # a header promising 10^11 rows: refused before anything is allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False, "shape": (10**11, emb.shape[1])})
    (copy / "embeddings.npy").write_bytes(header.getvalue() + emb.tobytes())
    _rewrite(copy, lambda m: m.update(count=10**11) or m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError):
        load_pack(copy)
    _rewrite(copy, lambda m: m.update(count=len(m["stickers"])))
    with pytest.raises(PackError, match=r"expected a \d+x\d+ float16/float32 array, got \(100000000000,"):
        load_pack(copy)
    (copy / "embeddings.npy").write_bytes(np.lib.format.magic(1, 0) + b"\x10\x00{'descr': '<f2'}\n" + b"\0" * 64)
    _rewrite(copy, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError, match="not a readable .npy"):
        load_pack(copy)


def _bundle_copy(tiny_bundle: Path, dest: Path) -> Path:
    shutil.copytree(tiny_bundle, dest)
    return dest


def test_a_truncated_graph_with_a_matching_hash_fails_at_load(tiny_bundle, tiny_pack, tmp_path):
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["graphs"]["text_encoder"]["fp32"]
    graph = bundle / entry["file"]
    graph.write_bytes(graph.read_bytes()[:5000])
    entry["sha256"] = sdk.bundle.sha256_file(graph)
    manifest["fingerprint"] = fingerprint(BundleManifest.from_json({**manifest, "fingerprint": ""}, "manifest"))
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    _rewrite(pack, lambda m: m.update(fingerprint=manifest["fingerprint"]))
    with pytest.raises(BundleError, match="text_encoder.onnx: onnxruntime cannot load this graph"):
        Ranker(bundle, pack, precision="fp32", providers="cpu")


@pytest.mark.parametrize("change,message", [
    (lambda m: m.pop("modes"), "field 'modes' is missing"),
    (lambda m: m["dims"].pop("text_hidden"), "field 'dims.text_hidden' is missing"),
    (lambda m: m.update(main_mode="telepathy"), "field 'main_mode' must be one of"),
    (lambda m: m["graphs"]["selector"].update(fp32="x"), r"field 'graphs.selector.fp32' must be an object"),
    (lambda m: m.update(scoring={"prior_weight": "high"}), "scoring.prior_weight"),
])
def test_manifest_fields_are_checked(tiny_bundle, tmp_path, change, message):
    bundle = _bundle_copy(tiny_bundle, tmp_path / "model")
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        Bundle(bundle, precision="fp32", providers="cpu")


# ------------------------------------------------------------------ property-based: only IntraError
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):  # the first few stickers stand for all of them
            yield from _paths(v, (*prefix, i))


def _mutate(doc, data):
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(list(_paths(doc))[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    return doc


@pytest.fixture(scope="module")
def shared_bundle(tiny_bundle):
    return Bundle(tiny_bundle, precision="fp32", providers="cpu")


@given(data=st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pack_json_mutations_raise_only_intra_errors(tiny_pack, shared_bundle, tmp_path_factory, data):
    meta = json.loads((tiny_pack / "pack.json").read_text())
    pack = tmp_path_factory.mktemp("mut") / "pack"
    shutil.copytree(tiny_pack, pack)
    (pack / "pack.json").write_text(json.dumps(_mutate(meta, data)))
    try:
        Ranker(shared_bundle, load_pack(pack)).rank("so happy today")
    except IntraError:
        pass


@given(data=st.data())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_manifest_mutations_raise_only_intra_errors(tiny_bundle, tiny_pack, tmp_path_factory, data):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    bundle = tmp_path_factory.mktemp("mut") / "model"
    shutil.copytree(tiny_bundle, bundle, symlinks=True)
    (bundle / "manifest.json").write_text(json.dumps(_mutate(manifest, data)))
    pack = load_pack(tiny_pack)
    try:
        Ranker(bundle, pack, precision="fp32", providers="cpu").rank("so happy today")
    except IntraError:
        pass


# ------------------------------------------------------------------ the CLI: no tracebacks
def _intra(*args: str | bytes, module: str = "sdk.cli") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True)


def test_cli_errors_end_in_one_line_and_exit_2(tiny_bundle, tiny_pack, synthetic_dir, tmp_path):
    cases = [
        ("rank", b"caf\xff", "--pack", str(tiny_pack), "--providers", "cpu"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--shard", "1"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--batch-size", "0"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--dtype", "float64"),
        ("rank", "hi", "--pack", str(tiny_pack), "--threads", "100000"),
        ("pack", "info", str(tmp_path / b"\xff-missing".decode("utf-8", "surrogateescape"))),
    ]
    for args in cases:
        proc = _intra(*args)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, (args, err)
        assert "Traceback" not in err and ("error:" in err or "Invalid value" in err), (args, err)
    assert not (tmp_path / "p").exists()
    proc = _intra("RUN", "--out", str(tmp_path / "b"), "--opset", "5", module="export.cli")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr and b"--opset" in proc.stderr


def test_the_last_resort_handler_turns_a_bug_into_one_line(capsys, monkeypatch):
    import typer

    from sdk.cli_base import run_guarded

    broken = typer.Typer()

    @broken.command()
    def boom() -> None:
        raise KeyError("oops")

    monkeypatch.setattr(sys, "argv", ["intra"])
    monkeypatch.delenv("INTRA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        run_guarded(broken, "intra")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError") and "Traceback" not in err and err.count("\n") == 1
