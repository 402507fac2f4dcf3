"""Numbers that would silently turn every score into NaN or -inf are refused where they enter."""

from __future__ import annotations

import numpy as np
import pytest

import sdk
from sdk.bundle import BundleError
from sdk.errors import ArgumentError, DatasetError
from sdk.scoring import ScoreWeights, validate_usage


@pytest.mark.parametrize("fields", [{"prior": float("nan")}, {"label": float("inf")}, {"smoothing": 0.0},
                                    {"smoothing": -1.0}, {"prior": -0.5}])
def test_score_weights_refuse_values_that_break_every_score(fields):
    with pytest.raises(ArgumentError, match="ScoreWeights"):
        ScoreWeights(**fields)


def test_usage_counts_whose_sum_overflows_are_refused():
    with pytest.raises(DatasetError, match="sum to more than a float"):
        validate_usage({"a": 1e308, "b": 1e308}, ["a", "b"], "counts.json", DatasetError)
    assert validate_usage({"a": 1e300, "b": 2}, ["a", "b"], "counts.json", DatasetError) == {"a": 1e300, "b": 2.0}


def test_a_graph_that_returns_nan_raises_instead_of_ranking(tiny_bundle, tiny_pack, monkeypatch):
    ranker = sdk.Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    context = [("them", "good morning")]
    assert np.isfinite(ranker.query([context])[1]).all()
    real = ranker.bundle.head_outputs

    def poisoned(*args, **kwargs):
        logits, queries, suggest = real(*args, **kwargs)
        return logits, np.full_like(queries, np.nan), suggest

    monkeypatch.setattr(ranker.bundle, "head_outputs", poisoned)
    with pytest.raises(BundleError, match="NaN or infinite values for context 0"):
        ranker.rank(context)


def test_a_cached_pack_is_served_while_another_pack_loads(tiny_bundle, tiny_pack, tmp_path, monkeypatch):
    import shutil
    import threading

    from sdk import ranker as ranker_module

    other = tmp_path / "other"
    shutil.copytree(tiny_pack, other)
    cached = ranker_module.get_ranker(tiny_pack, tiny_bundle, precision="fp32", providers="cpu")
    loading, release = threading.Event(), threading.Event()
    real = ranker_module._model_for

    def slow_model_for(pack, model):
        if pack == other:
            loading.set()
            assert release.wait(60), "the cached call never returned while this load was held"
        return real(pack, model)

    monkeypatch.setattr(ranker_module, "_model_for", slow_model_for)
    loader = threading.Thread(target=ranker_module.get_ranker, args=(other, tiny_bundle),
                              kwargs={"precision": "fp32", "providers": "cpu"})
    loader.start()
    assert loading.wait(60)
    served = []
    fetch = threading.Thread(target=lambda: served.append(
        ranker_module.get_ranker(tiny_pack, tiny_bundle, precision="fp32", providers="cpu")))
    fetch.start()
    fetch.join(30)  # with the global lock held by the loader, this call would still be waiting
    got = list(served)
    release.set()
    loader.join(60)
    fetch.join(60)
    assert got == [cached]


def test_diverse_top_k_is_bounded(tiny_bundle, tiny_pack):
    from sdk.diversity import MAX_DIVERSE_TOP_K

    ranker = sdk.Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    with pytest.raises(ArgumentError, match=f"at most {MAX_DIVERSE_TOP_K}"):
        ranker.rank("hello", top_k=MAX_DIVERSE_TOP_K + 1, diverse=True)
    assert len(ranker.rank("hello", top_k=MAX_DIVERSE_TOP_K + 1).matches) == len(ranker.pack)  # without diverse: fine


def test_messages_say_what_is_wrong(tmp_path):
    from sdk.history import History, HistoryError
    from sdk.manifest import BUNDLE_FORMAT_VERSION, BundleManifest, ManifestError

    (tmp_path / "h").mkdir()
    with pytest.raises(HistoryError, match="is a directory, not a file"):
        History(tmp_path / "h")
    with pytest.raises(ManifestError, match="upgrade intra"):
        BundleManifest.from_json({"format_version": BUNDLE_FORMAT_VERSION + 1}, "manifest.json")
    with pytest.raises(ManifestError, match="re-export"):
        BundleManifest.from_json({"format_version": BUNDLE_FORMAT_VERSION - 1}, "manifest.json")
