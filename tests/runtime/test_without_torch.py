"""The runtime tier: the SDK end to end on a tiny bundle made beforehand, where torch is not installed.

`scripts/test.sh` runs this directory a second time in a virtual environment with the runtime's
dependencies alone (no torch, no transformers, no onnx), as apps run the SDK, on the tiny fp32 bundle
that scripts/make_runtime_fixture.py made beforehand in the training environment
($INTRA_RUNTIME_BUNDLE). In the full tier the session's tiny bundle stands in for it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

import sdk
from sdk.cli import app

COLOURS = ("red", "blue", "green", "orange", "purple", "black", "yellow", "pink")


@pytest.fixture(scope="module")
def bundle(request) -> Path:
    """The bundle made for this tier ($INTRA_RUNTIME_BUNDLE), else the full tier's tiny bundle."""
    made = os.environ.get("INTRA_RUNTIME_BUNDLE")
    if made:
        return Path(made)
    if os.environ.get("INTRA_RUNTIME_TIER") == "1":
        pytest.fail("INTRA_RUNTIME_TIER=1 needs INTRA_RUNTIME_BUNDLE: run scripts/make_runtime_fixture.py first")
    return request.getfixturevalue("tiny_bundle")


@pytest.fixture(scope="module")
def pack(bundle, tmp_path_factory) -> Path:
    """A pack built on the device from a folder of drawn stickers with a descriptions.json."""
    folder = tmp_path_factory.mktemp("stickers") / "mine"
    folder.mkdir()
    described = {}
    for i, colour in enumerate(COLOURS):
        img = Image.new("RGB", (48, 48), "white")
        ImageDraw.Draw(img).ellipse((4 + i, 4, 44, 44 - i), fill=colour)
        img.save(folder / f"{colour}.png")
        described[f"{colour}.png"] = {"label": sdk.LABELS[i * 3 % len(sdk.LABELS)],
                                      "attributes": {"facial_expression": f"a {colour} smiling face"}}
    (folder / "descriptions.json").write_text(json.dumps(described))
    out = tmp_path_factory.mktemp("pack") / "pack"
    sdk.build_pack(folder, model=bundle, out=out, usage={"red": 9, "blue": 3}, precision="fp32", providers="cpu", progress=False)
    return out


def test_rank_builds_and_ranks_without_torch(bundle, pack):
    result = sdk.rank([("A", "I failed the exam"), ("B", "oh no")], pack, top_k=3, model=bundle, explain=True,
                      precision="fp32", providers="cpu")
    assert len(result.matches) == 3 and result.precision == "fp32" and result.intention in sdk.LABELS
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    # the parts add up to the score less the average sticker's prior, the same for every match
    rest = [m.score - (m.why.cosine + m.why.label_term + m.why.prior_term + m.why.history_term)
            for m in result.matches if m.why is not None]
    assert len(rest) == 3 and max(rest) - min(rest) < 1e-4


def test_rank_many_equals_rank_row_by_row(bundle, pack):
    ranker = sdk.Ranker(bundle, pack, precision="fp32", providers="cpu")
    contexts = ["so happy today", "I am scared", [{"role": "user", "content": "thank you so much"}]]
    many = ranker.rank_many(contexts, top_k=4, batch_size=2)
    for context, got in zip(contexts, many):
        one = ranker.rank(context, top_k=4)
        assert [m.sticker_id for m in got.matches] == [m.sticker_id for m in one.matches]
        assert np.allclose([m.score for m in got.matches], [m.score for m in one.matches], atol=1e-5)


def test_history_moves_a_sticker_up(bundle, pack, tmp_path):
    ranker = sdk.Ranker(bundle, pack, precision="fp32", providers="cpu", history=tmp_path / "me.json")
    before = [m.sticker_id for m in ranker.rank("so happy today", top_k=len(COLOURS)).matches]
    last = before[-1]
    for _ in range(30):
        ranker.record(last)
    after = [m.sticker_id for m in ranker.rank("so happy today", top_k=len(COLOURS)).matches]
    assert after.index(last) < before.index(last)
    assert json.loads((tmp_path / "me.json").read_text())["stickers"][last]["count"] == 30


def test_a_tampered_bundle_is_refused(bundle, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["scoring"]["prior_weight"] = 5.0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(sdk.BundleError, match="edited after export"):
        sdk.Bundle(copy, precision="fp32", providers="cpu")


def test_the_command_line_ranks(pack):
    out = CliRunner().invoke(app, ["rank", "so happy today", "--pack", str(pack), "--top-k", "2", "--json", "--precision", "fp32"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["matches"]) == 2


@pytest.mark.skipif(os.environ.get("INTRA_RUNTIME_TIER") != "1", reason="only in the torch-free environment scripts/test.sh makes")
def test_this_tier_runs_where_torch_is_not_installed():
    assert [m for m in ("torch", "transformers", "onnx", "optimum") if importlib.util.find_spec(m) is not None] == []
