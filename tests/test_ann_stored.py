"""The ANN index built with the pack: stored in it, loaded (never rebuilt) by a Ranker, refused when
stale or edited."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import sdk
from sdk import ann as ann_module
from sdk.errors import MissingExtraError
from sdk.pack import PackError, load_pack
from sdk.ranker import Ranker
from sdk.scoring import ScoreWeights

CONTEXTS = ["so happy", "I am scared", "thanks!", "ugh, this again", "wow, impressive"]


@pytest.fixture()
def built_from_vectors(monkeypatch) -> list[int]:
    """Counts the indexes built from vectors (not loaded from bytes)."""
    pytest.importorskip("faiss", reason="the 'ann' extra (faiss-cpu) is not installed")
    built: list[int] = []
    original = ann_module.AnnIndex.__init__

    def counting(self, vectors, m=32, index=None):
        if index is None:
            built.append(len(vectors))
        original(self, vectors, m, index)

    monkeypatch.setattr(ann_module.AnnIndex, "__init__", counting)
    return built


def _top(ranker: Ranker) -> list[list[str]]:
    return [[m.sticker_id for m in r.matches] for r in ranker.rank_many(CONTEXTS, top_k=10)]


def test_the_index_is_built_with_the_pack_and_loaded_by_the_ranker(tiny_bundle, synthetic_dir, tmp_path, built_from_vectors):
    pack = sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False, ann=True)
    assert pack.meta.ann is not None and (tmp_path / "pack" / "ann.faiss").is_file() and built_from_vectors == [len(pack)]
    built_from_vectors.clear()
    loaded = Ranker(tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu")  # ann=None: the stored index is used
    assert built_from_vectors == [] and loaded.rank("so happy").search == "ann"
    exact = Ranker(tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", ann=False)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_top(loaded), _top(exact))])
    assert overlap >= 0.9
    own = Ranker(tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", weights=ScoreWeights(prior=0.3))
    assert built_from_vectors == [len(pack)]  # other weights than the stored index's: built in memory, no error
    assert own.rank("so happy").search == "ann"


def test_a_stale_or_edited_index_raises_pack_error(tiny_bundle, synthetic_dir, tmp_path, built_from_vectors):
    sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False, ann=True)
    edited = tmp_path / "edited"
    shutil.copytree(tmp_path / "pack", edited)
    data = bytearray((edited / "ann.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (edited / "ann.faiss").write_bytes(bytes(data))
    for verify in (True, False):  # FAISS is never handed bytes that are not the named index
        with pytest.raises(PackError, match=r"ann: file 'ann.faiss' does not match its sha256"):
            load_pack(edited, verify=verify)
    stale = tmp_path / "stale"
    shutil.copytree(tmp_path / "pack", stale)
    meta = json.loads((stale / "pack.json").read_text())
    meta["ann"]["digest"] = "0" * 64  # built over other vectors than this pack's
    (stale / "pack.json").write_text(json.dumps(meta))
    with pytest.raises(PackError, match="stale or edited"):
        Ranker(tiny_bundle, stale, precision="fp32", providers="cpu")
    assert Ranker(tiny_bundle, stale, precision="fp32", providers="cpu", ann=False).rank("so happy").search == "exact"


def test_a_small_pack_stores_no_index_unless_asked_and_asking_needs_the_extra(tiny_bundle, tiny_pack, synthetic_dir, tmp_path, monkeypatch):
    assert load_pack(tiny_pack).meta.ann is None and not (tiny_pack / "ann.faiss").exists()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "faiss" else object())
    with pytest.raises(MissingExtraError, match="ann"):
        sdk.build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False, ann=True)
    assert not (tmp_path / "pack").exists()
