"""The pack format and pack building: folders, sidecars, shards, merges, tampering, bad fields."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from helpers import image_folder, mutate, rewrite_pack, save_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdk
from sdk.bundle import Bundle
from sdk.dataset import load_dataset
from sdk.errors import DatasetError, IntraError
from sdk.pack import PackError, load_pack, merge_packs
from sdk.ranker import Ranker


def test_pack_from_a_folder_with_sidecar_shards_and_merge(tiny_bundle, synthetic_dir, tmp_path):
    folder = tmp_path / "stickers"
    folder.mkdir()
    ds = load_dataset(synthetic_dir, splits=[])
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
    with pytest.raises(PackError, match="embeddings: file 'embeddings.npy' does not match its sha256"):
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
    assert pack.embeddings.shape == (pack.meta.count, pack.meta.dim)


def test_interrupted_pack_build_keeps_the_existing_pack(tiny_bundle, tiny_pack, synthetic_dir, tmp_path, monkeypatch):
    from sdk.bundle import Bundle

    target = tmp_path / "pack"
    shutil.copytree(tiny_pack, target)
    calls = {"n": 0}
    real = Bundle.sticker_rows

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Bundle, "sticker_rows", dies)
    with pytest.raises(KeyboardInterrupt):
        sdk.build_pack(synthetic_dir, tiny_bundle, target, precision="fp32", providers="cpu", progress=False)
    assert load_pack(target).ids == load_pack(tiny_pack).ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]


def test_a_scaled_embedding_row_is_refused(tiny_pack, tmp_path):
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack, copy)
    emb = np.load(copy / "embeddings.npy")
    emb[3] *= 50
    save_vectors(copy, emb)
    with pytest.raises(PackError, match=r"row 3 has length 50"):
        load_pack(copy)


def test_batch_size_and_shards_do_not_change_a_packs_vectors(tiny_bundle, synthetic_dir, tmp_path):
    folder = image_folder(synthetic_dir, tmp_path / "src", n=9)
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


def test_a_sidecar_entry_of_the_wrong_type_names_the_file(tiny_bundle, synthetic_dir, tmp_path):
    folder = image_folder(synthetic_dir, tmp_path / "src", n=2)
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
    rewrite_pack(copy, change)
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
    rewrite_pack(copy, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError, match="not a readable .npy|the file is not this pack's"):
        load_pack(copy)
    # a header promising 10^11 rows: refused before anything is allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False, "shape": (10**11, emb.shape[1])})
    (copy / "embeddings.npy").write_bytes(header.getvalue() + emb.tobytes())
    rewrite_pack(copy, lambda m: m.update(count=10**11) or m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError):
        load_pack(copy)
    rewrite_pack(copy, lambda m: m.update(count=len(m["stickers"])))
    with pytest.raises(PackError, match=r"expected a \d+x\d+ float16/float32 array, got \(100000000000,"):
        load_pack(copy)
    (copy / "embeddings.npy").write_bytes(np.lib.format.magic(1, 0) + b"\x10\x00{'descr': '<f2'}\n" + b"\0" * 64)
    rewrite_pack(copy, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError, match="not a readable .npy|the file is not this pack's"):
        load_pack(copy)
    # the right size, but not an .npy header: the header check names it
    (copy / "embeddings.npy").write_bytes(b"\0" * 128 + emb.astype(np.float16).tobytes())
    rewrite_pack(copy, lambda m: m["embeddings"].update(sha256=sdk.bundle.sha256_file(copy / "embeddings.npy")))
    with pytest.raises(PackError, match="not a readable .npy"):
        load_pack(copy)


@pytest.fixture(scope="module")
def shared_bundle(tiny_bundle):
    return Bundle(tiny_bundle, precision="fp32", providers="cpu")


@given(data=st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pack_json_mutations_raise_only_intra_errors(tiny_pack, shared_bundle, tmp_path_factory, data):
    meta = json.loads((tiny_pack / "pack.json").read_text())
    pack = tmp_path_factory.mktemp("mut") / "pack"
    shutil.copytree(tiny_pack, pack)
    (pack / "pack.json").write_text(json.dumps(mutate(meta, data)))
    try:
        Ranker(shared_bundle, load_pack(pack)).rank("so happy today")
    except IntraError:
        pass
