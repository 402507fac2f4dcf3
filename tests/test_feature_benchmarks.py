"""The feature benchmarks and experiments run end to end on the tiny bundle (no timed assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import features
from experiments import history, sticker_turns


def test_history_simulation_runs_and_history_helps_the_users_own_picks(tiny_bundle, synthetic_dir):
    r = history.run(tiny_bundle, synthetic_dir, users=8)
    assert r["chosen_weight"] in history.WEIGHTS and r["chosen_half_life"] in history.HALF_LIVES
    none, hist = r["test"]["none"], r["test"]["history"]
    assert none[0] == hist[0]  # no uses yet: the history term is absent, the ranking identical
    assert hist[100] != none[100]  # the term is applied (on the tiny world it need not help: ~2 stickers a label)
    assert "| with history |" in history.markdown(r)


def test_history_lifts_the_users_favourite_over_the_models_pick():
    import random

    from sdk.history import History

    # one intention, two stickers: the model prefers b, the user (who likes cats) sends a 4 times in 5
    scores = np.tile(np.array([[0.0, 0.1]], np.float32), (100, 1))
    world = history.World(("a", "b"), {"x": [0, 1]}, ["cat", "frog"], [False, False], ["x"], {"test": scores}, {"test": ["x"] * 100})
    taste = history.Taste(frozenset({"cat", "bear"}), captions=False)
    alone = history.evaluate(world, "test", History(), taste, 0.8, random.Random(0))
    h = History()
    history.send(world, h, taste, 100, random.Random(1))
    assert h.uses["a"].count > h.uses["b"].count
    helped = history.evaluate(world, "test", h, taste, 0.8, random.Random(0))
    assert alone[0] < 0.35 and helped[0] > 0.65  # R@1 follows the user's taste once the history knows it


def test_history_users_pick_by_taste(tiny_bundle, synthetic_dir, tmp_path):
    import random

    world = history.load_world(tiny_bundle, synthetic_dir)
    taste = history.random_taste(random.Random(0), world.species)
    rng = random.Random(1)
    label = next(iter(world.by_label))
    picks = [world.pick(taste, label, rng) for _ in range(400)]
    liked = [i for i in world.by_label[label] if world.species[i] in taste.species]
    if liked and len(liked) < len(world.by_label[label]):
        share = np.mean([p in liked for p in picks])
        assert share > len(liked) / len(world.by_label[label])


def test_sticker_turn_benchmark_on_the_synthetic_world(tiny_bundle, synthetic_dir):
    r = sticker_turns.measure_synthetic(tiny_bundle, synthetic_dir)
    run = r["runs"][0]
    assert set(run) >= {"without", "with (same intention)", "with (other intention)"}
    for row in run.values():
        if isinstance(row, dict):
            assert 0 <= row["R@1"]["mean"] <= row["R@5"]["mean"] <= row["R@10"]["mean"] <= 1
    assert len(r["validation_encodings"]) == 2 * (len(sticker_turns.ENCODINGS) + len(sticker_turns.VECTOR_BETAS)) + 1
    assert "read as label" in sticker_turns.markdown(r)


def test_feature_timing_covers_every_variant(tiny_bundle, synthetic_dir, tmp_path):
    from sdk.dataset import load_dataset
    from sdk.pack_build import build_pack

    pack = build_pack(synthetic_dir, tiny_bundle, tmp_path / "pack", progress=False, precision="fp32")
    conv = load_dataset(synthetic_dir).split("test")[0]
    calls, plain = features.variants(tiny_bundle, tmp_path / "pack", [{"speaker": t.speaker, "text": t.text} for t in conv.context],
                                     pack.ids[0])
    ms = features.time_round_robin(calls, 2)
    assert set(ms) == {"plain", "history (100 uses)", "explain (why)", "sticker turn", "diverse", "all of them"}
    assert all(v > 0 for v in ms.values())
    assert calls["explain (why)"]().matches[0].why is not None and calls["plain"]().matches[0].why is None


def test_emoji_head_lever_runs_on_a_tiny_bundle(tiny_bundle, synthetic_dir):
    from experiments import emoji_head

    run = emoji_head.measure_bundle(tiny_bundle, synthetic_dir)
    rows = run["rows"]
    assert len(rows) == 1 + len(emoji_head.WEIGHT_DECAYS) * (1 + len(emoji_head.ALPHAS))
    assert all(0 <= r["MRR"] <= 100 and 0 <= r["mAP"] <= 100 for r in rows.values())
    assert "final score (the default)" in emoji_head.markdown({"conversations": 1, "runs": [run]})


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_added_terms_lever_runs_on_a_tiny_bundle(tiny_bundle, synthetic_dir, tmp_path):
    from experiments import added_terms
    from experiments.validation_scores import validation_scores

    v = validation_scores(tiny_bundle, synthetic_dir)
    # the parts add up to what apps rank by
    assert np.allclose(v.cosine + v.prior[None, :] + v.label_term, v.final)
    run = added_terms.measure_bundle(tiny_bundle, synthetic_dir, tmp_path / "cache")
    rows = run["rows"]
    assert rows["final score (the default)"] == v.metrics(v.final)
    assert {"probe-emoji alone", "final + 0.5 log P_probe-intention", "final + 1.0 zero-shot description cosine"} <= set(rows)
    assert any(k.startswith("soft label term") for k in rows) == (v.logits is not None)
    assert all(0 <= r[m] <= 100 for r in rows.values() for m in ("MRR", "R@10", "mAP"))
    f = run["frontier"]
    assert f["target_mAP"] == rows["probe-intention alone"]["mAP"] and 0 <= f["points_reaching"] <= f["points"]
    if f["best_MRR"] is not None:
        assert f["best_MRR"]["mAP"] >= f["target_mAP"] - 1e-9
    text = added_terms.markdown({"conversations": len(v.convs), "runs": [run]})
    assert "final score (the default)" in text and "grid points reaching it" in text
    assert added_terms.seed_ensemble([v]) is None and added_terms.seed_ensemble([v, v]) == v.metrics(v.final)
    assert "averaged" in added_terms.markdown({"conversations": 1, "runs": [run, run], "seed_ensemble": v.metrics(v.final)})


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_animated_frames_experiment_ranks_by_the_first_and_by_three_frames(tiny_bundle, synthetic_dir):
    from experiments.animated_frames import ANIMATIONS, animated_frames, markdown

    r = animated_frames(tiny_bundle, synthetic_dir, rounds=50)
    assert set(r["animations"]) == set(ANIMATIONS) and r["n_test"] > 0 and 0 < r["still_mrr"] <= 100
    for row in r["animations"].values():
        assert 0 < row["first frame"] <= 100 and 0 < row["three frames"] <= 100
        assert row["three minus first"]["mean"] == pytest.approx(row["three frames"] - row["first frame"], abs=1e-6)
    assert "| pop-in |" in markdown(r) and "| tilt |" in markdown(r)
