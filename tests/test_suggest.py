"""The suggest head: fitted on a tiny run, exported into the intention graph, read by the SDK."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import sdk
from sdk.bundle import BundleError
from sdk.cli import app
from sdk.ranker import Ranker
from sdk.suggest import SuggestSettings, confidence
from training.suggest import (
    SUGGEST_FILE,
    SUGGEST_WEIGHTS,
    SuggestConfig,
    Texts,
    calibration,
    choose_threshold,
    fit,
    goemotions_texts,
    precision_at,
    roc_auc,
)

POSITIVE = "joy"


def _texts(convs, rng: random.Random, keep_negatives: int) -> Texts:
    pos = [c.context[-1].text for c in convs if c.label == POSITIVE]
    neg = [c.context[-1].text for c in convs if c.label != POSITIVE]
    kept = rng.sample(neg, min(keep_negatives, len(neg)))
    return Texts(pos + kept, np.array([1] * len(pos) + [0] * len(kept), np.float32), len(neg))


@pytest.fixture(scope="module")
def suggest_run(tiny_run_dir, synthetic_dir, tmp_path_factory):
    """The tiny run with a suggest head that learnt to spot one intention's moments."""
    from sdk.dataset import load_dataset

    run = tmp_path_factory.mktemp("suggest") / "run"
    shutil.copytree(tiny_run_dir, run)
    ds, rng = load_dataset(synthetic_dir), random.Random(0)
    data = {"train": _texts(ds.split("train"), rng, 200), "validation": _texts(ds.split("validation"), rng, 10_000),
            "test": _texts(ds.split("test"), rng, 10_000)}
    figures = fit(run, data, SuggestConfig(target_precision=0.3, epochs=100, weight_decays=(1e-4, 1e-2)), progress=False)
    return run, figures, data


def test_fit_writes_the_head_and_its_figures(suggest_run):
    run, figures, data = suggest_run
    assert (run / SUGGEST_WEIGHTS).is_file() and json.loads((run / SUGGEST_FILE).read_text())["settings"] == figures["settings"]
    assert figures["test"]["auc"] > 0.7  # one intention's wording is easy to tell from the others'
    s = figures["settings"]
    assert 0 <= s["threshold"] <= 1 and s["target_precision"] == 0.3
    assert s["base_rate"] == pytest.approx(data["train"].labels.sum() / (data["train"].labels.sum() + data["train"].negatives_total))
    assert sum(b["n"] for b in figures["test"]["calibration"]["bins"]) == len(data["test"].labels)


def test_threshold_precision_and_auc_on_known_numbers():
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    y = np.array([1, 0, 1, 1, 0, 0])
    assert precision_at(conf, y, 0.7, 1.0) == pytest.approx((2 / 3, 2 / 3))
    assert precision_at(conf, y, 0.7, 2.0) == pytest.approx((2 / 4, 2 / 3))  # negatives count at their real share
    assert choose_threshold(conf, y, 0.6, 1.0) == (0.6, True)  # the lowest threshold that still reaches 0.6
    top_is_negative = np.array([0, 1, 1, 0, 1, 0])
    assert choose_threshold(conf, top_is_negative, 0.99, 1.0) == (0.7, False)  # out of reach: the most precise point
    assert roc_auc(conf, y) == pytest.approx(7 / 9)
    cal = calibration(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 0, 1, 1]), bins=2)
    assert cal["ece"] == pytest.approx(0.1)
    np.testing.assert_allclose(confidence(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])


def test_exported_head_says_when_to_suggest_and_leaves_the_ranking_alone(suggest_run, synthetic_dir, tiny_bundle, tiny_pack, tmp_path):
    from export.exporter import export_run

    run, figures, _ = suggest_run
    bundle = tmp_path / "model"
    manifest = export_run(run, bundle, precisions=("fp32",), data=synthetic_dir, progress=False)
    assert manifest.suggest == SuggestSettings(**figures["settings"])
    pack = sdk.build_pack(synthetic_dir, bundle, tmp_path / "pack", precision="fp32", providers="cpu", progress=False)
    with_head = Ranker(bundle, pack, providers="cpu")
    without = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    contexts = ["I am so happy, this is the best day ever", "ok", "what do you mean by that?"]
    a, b = with_head.rank_many(contexts), without.rank_many(contexts)
    assert [[m.sticker_id for m in r.matches] for r in a] == [[m.sticker_id for m in r.matches] for r in b]
    for r in a:
        assert 0 <= r.confidence <= 1 and r.suggest == (r.confidence >= manifest.suggest.threshold)
        assert r.to_dict()["confidence"] == r.confidence
    assert all(r.confidence is None and r.suggest for r in b)  # no head: always suggest, confidence unknown
    shown = CliRunner().invoke(app, ["rank", "so happy", "--pack", str(tmp_path / "pack"), "--precision", "fp32"])
    assert shown.exit_code == 0 and "suggest a sticker: " in shown.output


def test_a_bad_suggest_setting_is_named(tiny_bundle, tmp_path):
    from sdk.manifest import MANIFEST

    copy = tmp_path / "model"
    shutil.copytree(tiny_bundle, copy)
    obj = json.loads((copy / MANIFEST).read_text())
    obj["suggest"] = {"threshold": 1.5, "target_precision": 0.1, "base_rate": 0.02}
    (copy / MANIFEST).write_text(json.dumps(obj))
    with pytest.raises(BundleError, match=r"suggest\.threshold"):
        sdk.Bundle(copy, precision="fp32", providers="cpu")


def test_suggest_cli_names_a_missing_source(tiny_run_dir, tmp_path):
    out = CliRunner().invoke(app, ["suggest", "--run", str(tiny_run_dir), "--source", str(tmp_path), "--out", str(tmp_path / "r")])
    assert out.exit_code == 2 and "goemotions" in out.output and "train.tsv" in out.output
    assert not (tiny_run_dir / SUGGEST_WEIGHTS).exists()


def test_goemotions_texts_from_the_shared_data(shared_data):
    data = goemotions_texts(shared_data, SuggestConfig(negatives=100, validation_negatives=50))
    assert 500 < data["train"].labels.sum() < 1500 and (data["train"].labels == 0).sum() == 100
    assert (data["validation"].labels == 0).sum() == 50 and data["train"].kept_share == 100 / data["train"].negatives_total
    assert data["train"].negatives_total > 30_000 and data["test"].kept_share == 1.0
    assert not any("\U0001F602" in t for t in data["train"].texts)  # the emoji itself is removed from positives
