"""TweetEval emoji's classic rows: majority and the TF-IDF + linear SVM baseline, C chosen on validation.

Each row gives (Q, 20) scores in label-id order, scored by :mod:`training.tweeteval_scoring`.
``python -m training.tweeteval_baselines --data DIR --out FILE.md`` writes their table.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk import atomic
from sdk.dataset import Conversation, Dataset, load_dataset

from .data.tweeteval import RULES, task_sticker_ids
from .metrics import bootstrap_interval
from .tweeteval_scoring import closed_metrics

C_GRID = (0.03, 0.1, 0.3, 1.0)


def text_and_labels(ds: Dataset, split: str) -> tuple[list[str], np.ndarray]:
    """The split's tweets and their task label ids."""
    label_of = {sid: i for i, sid in enumerate(task_sticker_ids(ds.info.details))}
    convs: Sequence[Conversation] = ds.split(split)
    return [" ".join(t.text for t in c.context) for c in convs], np.array([label_of[c.gold] for c in convs])


def majority_scores(train_labels: np.ndarray, n: int, n_labels: int = 20) -> np.ndarray:
    """Every tweet scored by its label's training frequency (the most used emoji first)."""
    counts = np.bincount(train_labels, minlength=n_labels).astype(float)
    return np.tile(counts, (n, 1))


def tfidf_svm(train_text: list[str], train_labels: np.ndarray, C: float):
    """TF-IDF of word 1-2 grams and character 2-5 grams, then a linear SVM (one-vs-rest)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2))
    return make_pipeline(features, LinearSVC(C=C)).fit(train_text, train_labels)


def baseline_rows(ds: Dataset, grid: Sequence[float] = C_GRID, seed: int = 0) -> dict[str, Any]:
    """Majority and TF-IDF + SVM on the test split, C chosen by validation macro-F1.

    ``predicted`` holds each row's (Q,) test predictions, for paired comparisons."""
    train_x, train_y = text_and_labels(ds, "train")
    val_x, val_y = text_and_labels(ds, "validation")
    test_x, test_y = text_and_labels(ds, "test")
    columns = list(range(len(task_sticker_ids(ds.info.details))))
    tried = {}
    for C in grid:
        model = tfidf_svm(train_x, train_y, C)
        tried[C] = closed_metrics(model.decision_function(val_x), val_y, columns)["macro_f1"]
    best = max(tried, key=lambda c: tried[c])
    svm = tfidf_svm(train_x, train_y, best).decision_function(test_x)
    rows = {"majority": majority_scores(train_y, len(test_y), len(columns)), f"tfidf-svm (C={best})": svm}
    out = {name: closed_metrics(sc, test_y, columns) for name, sc in rows.items()}
    correct = (svm.argmax(1) == test_y).astype(float)
    return {"rows": out, "validation_macro_f1_by_C": tried, "chosen_C": best, "n_test": len(test_y),
            "svm_accuracy_interval95": bootstrap_interval(100 * correct, seed=seed),
            "train_label_counts": dict(Counter(int(y) for y in train_y)),
            "predicted": {name: sc.argmax(1) for name, sc in rows.items()}, "gold": test_y}


def markdown(result: dict[str, Any]) -> str:
    """The baselines' table, with the leak rule stated."""
    lines = ["# TweetEval emoji: classic baselines (closed protocol, 20 emoji)", "",
             f"Test split: val_text.txt ({result['n_test']} tweets); {RULES['leak']}.", "",
             "| row | macro-F1 | accuracy | top-5 | MRR |", "| --- | --- | --- | --- | --- |"]
    for name, m in result["rows"].items():
        lines.append(f"| {name} | {m['macro_f1']:.1f} | {m['accuracy']:.1f} | {m['top5']:.1f} | {m['mrr']:.1f} |")
    tried = ", ".join(f"C={c}: {f:.2f}" for c, f in result["validation_macro_f1_by_C"].items())
    lines += ["", f"C chosen on validation macro-F1 ({tried}).", "",
              "Command: `" + " ".join(["python -m training.tweeteval_baselines", *sys.argv[1:]]) + "`", ""]
    return "\n".join(lines)


def main(data: Path = typer.Option(..., "--data", help="A dataset made by `intra data tweeteval`."),
         out: Path = typer.Option(..., "--out", help="Markdown file to write (a .json beside it holds the figures).")) -> None:
    """Majority and TF-IDF + linear SVM on a TweetEval emoji dataset."""
    result = baseline_rows(load_dataset(data))
    atomic.write_json(out.with_suffix(".json"), {k: v for k, v in result.items() if k not in ("predicted", "gold")})
    atomic.write_text(out, markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
