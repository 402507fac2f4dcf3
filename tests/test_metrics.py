import numpy as np
import pytest

from training.metrics import (
    average_precision,
    classification_metrics,
    gold_ranks,
    pr_curve,
    ranked_relevance,
    relevance_matrix,
    retrieval_metrics,
)


def test_hand_computed_precision_ap_and_mrr():
    # 5 stickers with labels; one query whose gold is sticker 0 (label 1)
    labels = [1, 2, 1, 3, 1]
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.1]])  # ranking 0,1,2,3,4 -> relevant at ranks 1,3,5
    m = retrieval_metrics(scores, np.array([0]), labels)
    assert m["P@1"] == 1.0
    assert m["P@3"] == pytest.approx(2 / 3)
    assert m["P@5"] == pytest.approx(3 / 5)
    assert m["mAP"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert m["R@1"] == 1.0 and m["MRR"] == 1.0


def test_ties_are_broken_against_the_relevant():
    labels = [0, 1, 1, 2]
    scores = np.array([[0.5, 0.5, 0.5, 0.5]])  # all tied; gold = 1, relevant = {1, 2}
    ranked = ranked_relevance(scores, relevance_matrix(labels, np.array([1])))
    assert ranked.tolist() == [[False, False, True, True]]
    assert average_precision(ranked[0]) == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert gold_ranks(scores, np.array([1])).tolist() == [4]
    m = retrieval_metrics(scores, np.array([1]), labels)
    assert m["MRR"] == pytest.approx(0.25) and m["P@1"] == 0.0


def test_unlabelled_gold_is_only_relevant_to_itself():
    rel = relevance_matrix([-1, -1, 0], np.array([0, 2]))
    assert rel.tolist() == [[True, False, False], [False, False, True]]


def test_mrr_and_recall_over_queries():
    scores = np.array([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]])
    m = retrieval_metrics(scores, np.array([0, 0]), [0, 1, 2])  # gold ranks 3 and 1
    assert m["MRR"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["R@1"] == 0.5 and m["R@5"] == 1.0


def test_pr_curve_is_monotone_and_ends_at_full_recall():
    rng = np.random.default_rng(0)
    scores = rng.random((20, 30))
    labels = list(rng.integers(0, 4, 30))
    curve = pr_curve(ranked_relevance(scores, relevance_matrix(labels, rng.integers(0, 30, 20))))
    p = np.array(curve["precision"])
    assert len(p) == 11 and np.all(np.diff(p) <= 1e-12) and p[-1] > 0


def test_classification_metrics():
    m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    assert m["accuracy"] == 0.75
    # F1: class0 2/3, class1 2/3, class2 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_paired_difference_separates_what_separate_intervals_cannot():
    from training.metrics import bootstrap_interval, paired_difference

    rng = np.random.default_rng(0)
    hard = rng.uniform(0, 1, 120)  # how hard each conversation is, shared by both rows
    a, b = hard + 0.05, hard.copy()
    a_lo, a_hi = bootstrap_interval(a)
    b_lo, b_hi = bootstrap_interval(b)
    assert a_lo < b_hi  # separately, the two intervals overlap
    d = paired_difference(a, b)
    assert abs(d["mean"] - 0.05) < 1e-9 and d["beyond_noise"] and d["interval"][0] > 0
    coin = paired_difference(hard + rng.normal(0, 0.2, 120), hard)
    assert coin["interval"][0] < 0 < coin["interval"][1] and not coin["beyond_noise"]
    with pytest.raises(ValueError, match="same queries"):
        paired_difference(a, b[:-1])
