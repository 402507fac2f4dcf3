"""The two frozen-feature probes (training/probes.py) and the report rows they feed."""

import json

import numpy as np
import pytest

from sdk.dataset import load_dataset
from sdk.labels import LABEL_INDEX
from training.metrics import retrieval_metrics


@pytest.fixture(scope="module")
def probe_out(synthetic_dir, tmp_path_factory):
    from training.probes import probe_scores

    ds = load_dataset(synthetic_dir)
    convs = ds.split("validation")
    cache = tmp_path_factory.mktemp("probe-cache")
    return ds, convs, cache, probe_scores(ds, convs, cache, progress=False)


def test_probes_learn_the_world_and_beat_random(probe_out):
    ds, convs, _, scores = probe_out
    index = ds.sticker_index()
    gold = np.array([index[c.sticker_id] for c in convs])
    labels = ds.sticker_labels()[0]
    random = retrieval_metrics(np.random.default_rng(0).random(scores["probe-emoji"].shape), gold, labels)
    for name in ("probe-emoji", "probe-intention"):
        assert scores[name].shape == (len(convs), len(ds.stickers))
        m = retrieval_metrics(scores[name], gold, labels)
        assert m["MRR"] > 1.5 * random["MRR"] and m["mAP"] > 1.3 * random["mAP"], (name, m, random)


def test_probe_intention_is_a_mixture_of_training_counts(probe_out):
    from training.probes import sticker_given_label

    ds, convs, _, scores = probe_out
    p = sticker_given_label(ds, 0.5)
    assert np.allclose(p.sum(1), 1.0)
    # a sticker never used in training only gets the smoothing mass under every label
    used = set(ds.usage_counts())
    train = ds.split("train")
    c = train[0]
    row = p[LABEL_INDEX[c.label]]
    unused = [i for i, s in enumerate(ds.stickers) if s.id not in used]
    if unused:
        assert row[ds.sticker_index()[c.sticker_id]] > row[unused[0]]
    # exp(score) is a probability distribution over stickers for every context
    assert np.allclose(np.exp(scores["probe-intention"]).sum(1), 1.0, atol=1e-4)


def test_features_are_cached_and_reused(probe_out):
    from training.probes import FrozenFeatures, ProbeConfig

    ds, convs, cache, _ = probe_out
    files = sorted(cache.glob("features-*.npy"))
    assert files
    features = FrozenFeatures(cache_dir=cache, cfg=ProbeConfig(), progress=False)
    texts = [c.context[-1].text for c in convs[:5]]
    first = features(texts)
    assert len(list(cache.glob("features-*.npy"))) == len(files) + 1
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.save(sorted(set(cache.glob("features-*.npy")) - set(files))[0], np.zeros_like(first))
    again = FrozenFeatures(cache_dir=cache, cfg=ProbeConfig(), progress=False)  # a later run
    assert np.array_equal(again(texts), np.zeros_like(first))  # read back, not recomputed
    assert features(texts) is first  # the same texts asked again in one process: remembered


def test_eval_report_has_probe_and_sdk_rows_and_the_sdk_row_matches(tiny_run_dir, tiny_bundle, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from sdk.cli import app

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "--run", str(tiny_run_dir), "--data", str(synthetic_dir), "--out", str(out),
                                      "--split", "validation", "--probes", "--model", str(tiny_bundle), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    models = report["models"]
    assert {"int-ra", "probe-emoji", "probe-intention", "int-ra (sdk fp32)", "popular"} <= set(models)
    # the SDK ranks exactly as the report's int-ra row (fp32 graphs, float16 pack vectors)
    for k in ("MRR", "R@10", "mAP"):
        assert models["int-ra (sdk fp32)"][k] == pytest.approx(models["int-ra"][k], abs=0.01)
    if report["scoring_weights"]["int-ra"]["prior_weight"] or report["scoring_weights"]["int-ra"]["label_weight"]:
        assert "int-ra (cosine only)" in models
    low, high = report["main_interval95"]["MRR"]
    assert low <= models["int-ra"]["MRR"] <= high
    assert "probe-emoji" in (out / "report.md").read_text()
