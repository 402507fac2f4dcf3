"""Stickers that are only text: packs from a JSON list or a dataset, mixed with image stickers,
embedded by the SDK exactly as the trainer embeds them, trained on, exported and ranked."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk.dataset import DatasetError, load_dataset, write_dataset_files
from sdk.pack import PackError, load_pack

KAOMOJI = [
    {"id": "flip", "descriptions": ["(╯°□°)╯︵ ┻━┻"]},
    {"id": "shrug", "descriptions": ["¯\\_(ツ)_/¯"]},
    {"id": "facepalm", "descriptions": ["[捂脸]"]},
    {"id": "happy", "descriptions": ["(＾▽＾)"]},
]


def _text_only_world(synthetic_dir: Path, out: Path, every: int = 3) -> list[str]:
    """The synthetic world with every `every`-th sticker's image dropped: those stickers are
    described by their attribute texts alone. Returns their ids."""
    ds = load_dataset(synthetic_dir)
    shutil.copytree(synthetic_dir / "images", out / "images")
    stickers, dropped = [], []
    for i, s in enumerate(ds.stickers):
        if i % every == 0:
            stickers.append(replace(s, image=None, attributes={}, descriptions=tuple(s.attributes.values())))
            dropped.append(s.id)
            (out / s.image_file).unlink()
        else:
            stickers.append(s)
    write_dataset_files(out, ds.info, stickers, dict(ds.splits))
    return dropped


def test_a_pack_of_kaomoji_whose_descriptions_are_the_kaomoji(tiny_bundle, tmp_path):
    listing = tmp_path / "kaomoji.json"
    twin = {"id": "flip-again", "descriptions": ["(╯°□°)╯︵ ┻━┻"]}
    listing.write_text(json.dumps([*KAOMOJI, twin], ensure_ascii=False), encoding="utf-8")
    pack = sdk.build_pack(listing, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    assert pack.ids == ("flip", "shrug", "facepalm", "happy", "flip-again")
    assert all(s.file is None and s.sha256 is None for s in pack.stickers)
    assert load_pack(tmp_path / "pack").stickers[2].descriptions == ("[捂脸]",)
    assert list((tmp_path / "pack").iterdir()) and not (tmp_path / "pack" / "images").exists()
    emb = pack.embeddings
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-2)
    # the same text gives the same vector, other texts other vectors
    assert float(emb[0] @ emb[4]) > 0.999
    assert float(np.max(emb[:4] @ emb[:4].T - np.eye(4) * 2)) < 0.999
    # int8 graphs (one row at a time) take the all-zero regions of a text-only sticker as well
    int8 = sdk.build_pack(listing, tiny_bundle, tmp_path / "int8", precision="int8", providers="cpu", progress=False)
    assert np.isfinite(int8.embeddings).all() and float(np.min(np.sum(int8.embeddings * emb, axis=1))) > 0.98
    result = sdk.rank("that went badly, I give up", tmp_path / "pack", model=tiny_bundle, precision="fp32", top_k=5)
    assert len(result.matches) == 5
    top = result.matches[0]
    assert top.file is None and top.descriptions == pack.stickers[pack.ids.index(top.sticker_id)].descriptions
    assert top.to_dict()["file"] is None and top.to_dict()["descriptions"] == list(top.descriptions)


def test_a_mixed_pack_ranks_both_kinds_alike(tiny_bundle, synthetic_dir, tmp_path):
    ds = load_dataset(synthetic_dir)
    folder = tmp_path / "app"
    folder.mkdir()
    entries = []
    for s in ds.stickers[:6]:
        shutil.copyfile(synthetic_dir / s.image_file, folder / Path(s.image_file).name)
        entries.append({"id": s.id, "image": Path(s.image_file).name, "attributes": dict(s.attributes)})
    # text-only twins of the same stickers, described by the same texts in another order
    entries += [{"id": f"{s.id}-text", "descriptions": list(s.attributes.values())[::-1]} for s in ds.stickers[:6]]
    entries += KAOMOJI
    (folder / "stickers.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    pack = sdk.build_pack(folder / "stickers.json", tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu",
                          progress=False, batch_size=5)
    assert len(pack) == 16 and [s.file is None for s in pack.stickers] == [False] * 6 + [True] * 10
    assert all((pack.root / s.file).is_file() for s in pack.stickers[:6] if s.file)
    # a text-only sticker's vector does not depend on its batch or on the order of its texts
    alone = sdk.build_pack(_listing(tmp_path, [entries[6]]), tiny_bundle, tmp_path / "alone", precision="fp32",
                           providers="cpu", progress=False)
    assert float(alone.embeddings[0] @ pack.embeddings[6]) > 0.999
    ranker = sdk.Ranker(tiny_bundle, pack, precision="fp32", providers="cpu")
    everything = ranker.rank("thank you so much", top_k=len(pack))
    kinds = {m.file is None for m in everything.matches}
    assert len(everything.matches) == 16 and kinds == {True, False}
    from sdk.gallery import Entry, render

    html = render([Entry(["thank you so much"], everything)], "mixed")
    assert "text-sticker" in html and "(╯°□°)╯︵ ┻━┻".replace("°", "&deg;") not in html and "┻━┻" in html


def _listing(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_sdk_embeds_text_only_stickers_as_the_trainer_does(tiny_run_dir, tiny_bundle, synthetic_dir, tmp_path):
    from training.catalog_scores import sticker_matrix
    from training.model_inputs import sticker_inputs
    from training.run_dir import load_run

    world = tmp_path / "world"
    dropped = _text_only_world(synthetic_dir, world)
    ds = load_dataset(world)
    model, tok, image_settings, _ = load_run(tiny_run_dir)
    torch_vectors = sticker_matrix(model, tok, sticker_inputs(ds, image_settings)).numpy()
    pack = sdk.build_pack(world, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    rows = [pack.ids.index(sid) for sid in dropped]
    assert all(pack.stickers[i].file is None for i in rows)
    cosine = np.sum(pack.embeddings * torch_vectors, axis=1)
    assert cosine.min() > 0.999  # both kinds, float16 storage
    image_only = load_pack(tiny_pack_of(tiny_bundle, synthetic_dir, tmp_path))
    kept = [i for i, sid in enumerate(ds.sticker_ids) if sid not in dropped]
    assert np.allclose(image_only.embeddings[kept], pack.embeddings[kept], atol=2e-3)


def tiny_pack_of(bundle: Path, data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "images-pack"
    sdk.build_pack(data, bundle, out, precision="fp32", providers="cpu", progress=False)
    return out


def test_training_on_text_only_stickers_exports_and_ranks(synthetic_dir, tmp_path):
    from export.exporter import export_run
    from training.config import preset
    from training.trainer import train

    world = tmp_path / "world"
    _text_only_world(synthetic_dir, world, every=2)
    train(preset("tiny", epochs=1), world, tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "model", data=world, progress=False, precisions=("fp32",))
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["text_only"] is True and manifest["gate"]["passed"]
    pack = sdk.build_pack(world, tmp_path / "model", tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    result = sdk.rank("so happy today", pack.root, model=tmp_path / "model", precision="fp32", top_k=len(pack))
    assert {m.file is None for m in result.matches} == {True, False}


def test_bundles_that_read_no_descriptions_refuse_text_only_stickers(synthetic_dir, tmp_path):
    from training.config import preset
    from training.trainer import train

    world = tmp_path / "world"
    _text_only_world(synthetic_dir, world)
    with pytest.raises(sdk.IntraError, match="no image"):
        train(preset("tiny", epochs=1, use_attributes=False), world, tmp_path / "run", progress=False)


def test_a_bundle_without_the_text_only_path_names_the_fix(tiny_bundle, tmp_path):
    from sdk.manifest import MANIFEST, seal

    model = tmp_path / "old"
    shutil.copytree(tiny_bundle, model)
    doc = json.loads((model / MANIFEST).read_text(encoding="utf-8"))
    doc["text_only"] = False  # what a bundle exported before text-only stickers says
    doc["seal"] = seal(doc)
    (model / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PackError, match="re-export"):
        sdk.build_pack(_listing(tmp_path, KAOMOJI), model, tmp_path / "pack", precision="fp32", providers="cpu",
                       progress=False)
    assert not (tmp_path / "pack").exists()


@pytest.mark.parametrize("entries, message", [
    ([{"id": "x"}], "needs an image or at least one description"),
    ([{"id": "x", "descriptions": ["  "]}], "needs an image or at least one description"),
    ([{"id": "x", "descriptions": "flip"}], "must be a list of strings"),
    ([{"id": "x", "descriptions": [3]}], r"descriptions\[0\]' must be a string"),
    ([{"descriptions": ["a"]}], "field 'id'"),
    ([{"id": "x", "descriptions": ["a"]}, {"id": "x", "descriptions": ["b"]}], "'x' is not unique"),
    ([{"id": "x", "image": "../outside.png"}], "field 'image'"),
    ([{"id": "x", "image": "missing.png"}], "not found"),
    ([{"id": "x", "description": ["a"]}], "unknown field 'description'"),
    ([], "non-empty list"),
    ({"id": "x"}, "non-empty list"),
])
def test_a_bad_listing_is_refused_naming_the_entry(tiny_bundle, tmp_path, entries, message):
    with pytest.raises(DatasetError, match=message):
        sdk.build_pack(_listing(tmp_path, entries), tiny_bundle, tmp_path / "pack", precision="fp32", progress=False)
    assert not (tmp_path / "pack").exists()


def test_a_dataset_sticker_with_an_image_and_descriptions_is_refused(synthetic_dir, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(synthetic_dir, world)
    lines = (world / "stickers.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["descriptions"] = ["a caption"]
    (world / "stickers.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"stickers.jsonl:1: field 'descriptions' is for stickers without an image"):
        load_dataset(world)


def test_cli_builds_and_ranks_a_text_only_pack(tiny_bundle, tmp_path):
    from sdk.cli import app

    listing = _listing(tmp_path, KAOMOJI)
    runner = CliRunner()
    built = runner.invoke(app, ["pack", "build", str(listing), "--model", str(tiny_bundle), "--out", str(tmp_path / "pack"),
                                "--precision", "fp32"])
    assert built.exit_code == 0, built.output
    ranked = runner.invoke(app, ["rank", "I give up", "--pack", str(tmp_path / "pack"), "--model", str(tiny_bundle),
                                 "--precision", "fp32", "--json"])
    assert ranked.exit_code == 0, ranked.output
    matches = json.loads(ranked.output)["matches"]
    assert {m["sticker_id"] for m in matches} <= {k["id"] for k in KAOMOJI}
    assert all(m["file"] is None and m["descriptions"] for m in matches)


def test_packs_with_text_only_stickers_merge(tiny_bundle, tiny_pack, tmp_path):
    kaomoji = sdk.build_pack(_listing(tmp_path, KAOMOJI), tiny_bundle, tmp_path / "kaomoji", precision="fp32",
                             providers="cpu", progress=False)
    merged = load_pack(sdk.merge_packs([tiny_pack, kaomoji.root], tmp_path / "merged"))
    images = load_pack(tiny_pack)
    assert merged.ids == images.ids + kaomoji.ids
    assert [s.file is None for s in merged.stickers] == [False] * len(images) + [True] * len(kaomoji)
    assert np.allclose(merged.embeddings[len(images):], kaomoji.embeddings)
    assert all(merged.path_of(i).is_file() for i in range(len(images)))
