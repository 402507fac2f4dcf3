"""TweetEval emoji through the SDK: the closed protocol (20-emoji pack) and the open one (646).

``python -m benchmarks.tweeteval --model BUNDLE --task DIR [--full DIR] --out DIR`` ranks the test
split with `sdk.Ranker` at the bundle's default precision over a pack built from each dataset
(so the pack carries the training split's usage counts, as an app's dataset pack does) and
writes ``tweeteval.json``, ``tweeteval.md`` and ``predictions.txt`` (the official format).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk import atomic
from sdk.bundle import Bundle
from sdk.dataset import Dataset, load_dataset
from sdk.temp_pack import temporary_ranker
from training.data.tweeteval import RULES, task_sticker_ids
from training.metrics import bootstrap_interval, gold_ranks
from training.tweeteval_scoring import closed_metrics, predicted_labels, write_predictions


def split_contexts(ds: Dataset, split: str = "test") -> list[list[tuple[str, str]]]:
    """The split's conversations as SDK contexts, in split order."""
    return [c.turns() for c in ds.split(split)]


def _weights(model: Path, prior: float | None) -> dict[str, Any]:
    """Ranker options: the bundle's own score weights, or them with the usage prior's weight replaced."""
    if prior is None:
        return {}
    return {"weights": dataclasses.replace(Bundle(model, providers="cpu").score_weights, prior=prior)}


def closed_protocol(model: Path, task: Path, out: Path, precision: str | None = None,
                    prior: float | None = None, keep_scores: bool = False) -> dict[str, Any]:
    """Closed protocol: macro-F1 (official scorer), accuracy, top-5, MRR; writes predictions.txt.
    `keep_scores` adds the (Q, 20) scores in label-id order as ``scores``."""
    ds = load_dataset(task)
    task_ids = task_sticker_ids(ds.info.details)
    label_of = {sid: i for i, sid in enumerate(task_ids)}
    gold = np.array([label_of[c.gold] for c in ds.split("test")])
    with temporary_ranker(model, task, precision=precision, **_weights(model, prior)) as ranker:
        _, scores = ranker.score_matrix(split_contexts(ds))
        column = {s.id: i for i, s in enumerate(ranker.pack.stickers)}
        precision_used, weights = ranker.bundle.precision, ranker.terms.weights.to_json()
    columns = [column[sid] for sid in task_ids]
    predicted = predicted_labels(scores, columns)
    write_predictions(out / "predictions.txt", predicted)
    result = closed_metrics(scores, gold, columns)
    result["accuracy_interval95"] = bootstrap_interval(100.0 * (predicted == gold), seed=0)
    result["precision"], result["weights"] = precision_used, weights
    if keep_scores:
        result["scores"] = scores[:, columns]
    return result


def open_protocol(model: Path, full: Path, precision: str | None = None, prior: float | None = None) -> dict[str, Any]:
    """Open protocol over every emoji of the catalog: R@1, R@5, R@10 and MRR (percent)."""
    ds = load_dataset(full)
    with temporary_ranker(model, full, precision=precision, **_weights(model, prior)) as ranker:
        _, scores = ranker.score_matrix(split_contexts(ds))
        column = {s.id: i for i, s in enumerate(ranker.pack.stickers)}
    ranks = gold_ranks(scores, np.array([column[c.gold] for c in ds.split("test")]))
    return {"stickers": len(column), **{f"R@{k}": 100.0 * float((ranks <= k).mean()) for k in (1, 5, 10)},
            "mrr": 100.0 * float((1.0 / ranks).mean())}


def markdown(result: dict[str, Any]) -> str:
    c = result["closed"]
    lines = ["# TweetEval emoji through the SDK", "", f"{RULES['leak']}.", "",
             f"Closed protocol ({c['n']} test tweets, 20 emoji, {c['precision']}, prior weight "
             f"{c['weights']['prior_weight']}): macro-F1 {c['macro_f1']:.2f}, "
             f"accuracy {c['accuracy']:.2f} (95% {c['accuracy_interval95'][0]:.2f}-{c['accuracy_interval95'][1]:.2f}), "
             f"top-5 {c['top5']:.2f}, MRR {c['mrr']:.2f}."]
    if "open" in result:
        o = result["open"]
        lines.append(f"Open protocol ({o['stickers']} emoji): R@1 {o['R@1']:.2f}, R@5 {o['R@5']:.2f}, R@10 {o['R@10']:.2f}, "
                     f"MRR {o['mrr']:.2f}.")
    return "\n".join(lines) + "\n"


# shared by the TweetEval commands that rank through the SDK
MODEL_OPTION = typer.Option(..., "--model", help="An exported bundle.")
TASK_OPTION = typer.Option(..., "--task", help="`intra data tweeteval --catalog task` dataset (20 emoji; closed protocol).")
FULL_OPTION = typer.Option(None, "--full", help="`intra data tweeteval` dataset with the full catalog (646; open protocol).")


def main(model: Path = MODEL_OPTION, task: Path = TASK_OPTION, full: Path | None = FULL_OPTION,
         out: Path = typer.Option(..., "--out", help="Directory for tweeteval.json, tweeteval.md and predictions.txt."),
         precision: str | None = typer.Option(None, help="Bundle precision. [default: the SDK's choice]"),
         prior: float | None = typer.Option(None, "--prior-weight", help="Usage prior's weight, as an app's "
                                            "sdk.ScoreWeights would set it. [default: the bundle's]")) -> None:
    """Rank TweetEval emoji's test split through the SDK and score it the field's way and an app's."""
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"closed": closed_protocol(model, task, out, precision, prior)}
    if full is not None:
        result["open"] = open_protocol(model, full, precision, prior)
    atomic.write_json(out / "tweeteval.json", result)
    atomic.write_text(out / "tweeteval.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
