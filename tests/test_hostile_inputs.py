"""What a careless app or a hostile file passes: wrong types, unbounded lists, odd names, escapes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import rewrite_pack
from typer.testing import CliRunner

import sdk
from sdk.bundle import Bundle, BundleError
from sdk.cli import app
from sdk.context import MAX_SCANNED, ContextError, parse_context, parse_knowledge
from sdk.dataset import load_dataset
from sdk.dirread import DirReader
from sdk.errors import ArgumentError
from sdk.history import History
from sdk.pack import PackError, load_pack
from sdk.ranker import Ranker


@pytest.mark.parametrize("call", [
    lambda b, p: load_pack(123),
    lambda b, p: Bundle(None),
    lambda b, p: Ranker(123, p),
    lambda b, p: History(123),
    lambda b, p: sdk.build_pack(123, b, p / "never"),
    lambda b, p: load_dataset(4.5),
    lambda b, p: load_pack("pack\x00evil"),
], ids=["load_pack", "Bundle", "Ranker", "History", "build_pack", "load_dataset", "nul-path"])
def test_a_path_of_the_wrong_type_is_an_argument_error(tiny_bundle, tiny_pack, call):
    with pytest.raises(ArgumentError, match="must be a path|NUL character"):
        call(tiny_bundle, tiny_pack)


def test_a_nul_in_a_file_name_of_pack_json_is_a_pack_error(tiny_pack, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    rewrite_pack(pack, lambda m: m["stickers"][0].update(file="images/a\x00b.png"))
    with pytest.raises(PackError, match=r"stickers\[0\]: path .* contains a NUL character"):
        load_pack(pack)


def test_knowledge_of_the_wrong_shape_is_a_context_error(tiny_bundle, tiny_pack):
    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    for bad in ({"xIntent": ["to rest"]}, "to rest", [None]):
        with pytest.raises(ContextError, match="knowledge"):
            ranker.rank_many(["so happy", "so sad"], knowledge=bad)
        with pytest.raises(ContextError, match="knowledge"):
            ranker.score_matrix(["so happy", "so sad"], knowledge=bad)


def test_a_pack_of_another_width_under_a_matching_fingerprint_is_refused(tiny_bundle, tiny_pack, tmp_path):
    from helpers import save_vectors

    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    count, dim = load_pack(pack).embeddings.shape
    wide = np.zeros((count, dim + 1), np.float32)
    wide[:, 0] = 1
    save_vectors(pack, wide.astype(np.float16))
    rewrite_pack(pack, lambda m: m.update(dim=dim + 1))
    with pytest.raises(PackError, match=f"its vectors have {dim + 1} values, but the model .* makes {dim}"):
        Ranker(tiny_bundle, pack, precision="fp32", providers="cpu")


def test_empty_turns_and_texts_count_against_the_caps():
    """Turns and knowledge texts beyond MAX_SCANNED are never read, empty or not."""
    assert parse_context(["an old turn", *[""] * (MAX_SCANNED - 1)]) == ["an old turn"]
    with pytest.raises(ContextError, match="empty"):
        parse_context(["an old turn", *[""] * MAX_SCANNED])
    assert parse_knowledge({"xIntent": [*[""] * (MAX_SCANNED - 1), "to rest"]}) == {"xIntent": ("to rest",)}
    assert parse_knowledge({"xIntent": [*[""] * MAX_SCANNED, "to rest"]}) is None
    huge = [""] * 5_000_000  # bounded work: only the newest MAX_SCANNED are looked at
    with pytest.raises(ContextError, match="empty"):
        parse_context(huge)


def test_an_embeddings_file_of_the_wrong_size_is_refused_before_it_is_hashed(tiny_pack, tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    with open(pack / "embeddings.npy", "ab") as f:
        f.write(b"\0" * 1_000_000)
    hashed = []
    real = DirReader.sha256
    monkeypatch.setattr(DirReader, "sha256", lambda self, rel: hashed.append(rel) or real(self, rel))
    with pytest.raises(PackError, match=r"embeddings.npy: 1,0\d\d,\d\d\d bytes, but .* the file is not this pack's"):
        load_pack(pack)
    assert hashed == []


def test_terminal_escapes_from_a_shared_pack_are_printed_escaped(tiny_pack, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    evil = "evil\x1b]0;owned\x07\x1b[2J\u202e"
    meta = json.loads((pack / "pack.json").read_text())
    first = meta["stickers"][0]["id"]
    rewrite_pack(pack, lambda m: (m["stickers"][0].update(id=evil),
                                  m.get("usage") is not None and m["usage"].update({evil: m["usage"].pop(first, 0)})))
    count = len(meta["stickers"])
    for extra in ([], ["--json"]):
        out = CliRunner().invoke(app, ["rank", "so happy", "--pack", str(pack), "--precision", "fp32",
                                       "--top-k", str(count), *extra])
        assert out.exit_code == 0, out.output
        assert "\x1b" not in out.output and "\x07" not in out.output and "\u202e" not in out.output
        assert "evil\\u001b]0;owned\\u0007" in out.output
    ids = [m["sticker_id"] for m in json.loads(out.output)["matches"]]
    assert evil in ids  # the JSON stays JSON, and the id reads back as it is


@pytest.mark.parametrize("field,value", [("clock", "1" + "0" * 400), ("count", "1" + "0" * 400), ("weight", "1" + "0" * 400)])
def test_history_numbers_beyond_a_float_are_a_history_error(tmp_path, field, value):
    from sdk.history import HistoryError

    use = {"count": "1", "last": "1", "weight": "1", field: value}
    clock = value if field == "clock" else "5"
    text = ('{"format_version": 1, "kind": "intra-history", "clock": ' + clock + ', "stickers": {"a": {'
            + ", ".join(f'"{k}": {v}' for k, v in use.items() if k != "clock") + "}}}")
    (tmp_path / "h.json").write_text(text)
    with pytest.raises(HistoryError, match=f"'{'clock' if field == 'clock' else 'stickers.a.' + field}' must be"):
        History(tmp_path / "h.json")
    assert (tmp_path / "h.json").read_text() == text


def test_graphs_whose_widths_differ_from_the_manifest_are_refused(tiny_bundle, tmp_path):
    from sdk.manifest import seal

    bundle = tmp_path / "model"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["dims"]["dim"] += 1
    manifest["seal"] = seal(manifest)  # a careful forger: only the graphs can tell
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    loaded = Bundle(bundle, precision="fp32", providers="cpu")
    with pytest.raises(BundleError, match=r"selector.onnx: output 'sticker' has width \d+, but the manifest says"):
        loaded.session("selector")
