"""TweetEval emoji through the SDK: the closed protocol (20-emoji pack) and the open one (646).

``python -m benchmarks.tweeteval --model BUNDLE --task DIR [--full DIR] --out DIR`` ranks the test
split with `sdk.Ranker` at the bundle's default precision over a pack built from each dataset
(so the pack carries the training split's usage counts, as an app's dataset pack does) and
writes ``tweeteval.json``, ``tweeteval.md`` and ``predictions.txt`` (the official format).

``--label-bias`` first ranks the validation split, fits one bias per task emoji on it for
macro-F1 (:mod:`training.label_bias`), and ranks the test split over a pack that carries those
biases (``pack.json``'s ``bias``): the same remedy as the plain classifier's label bias, held in
the pack as an app would hold it; the biases are also written to ``bias.json``, which ``intra pack
build --bias`` takes. Whether they generalise is measured on validation alone: fitted on one half,
scored on the other, both ways round.
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
from training.label_bias import fit_label_bias, score_grid
from training.metrics import bootstrap_interval, gold_ranks, macro_f1
from training.tweeteval_scoring import closed_metrics, predicted_labels, write_predictions


def split_contexts(ds: Dataset, split: str = "test") -> list[list[tuple[str, str]]]:
    """The split's conversations as SDK contexts, in split order."""
    return [c.turns() for c in ds.split(split)]


def _weights(model: Path, prior: float | None) -> dict[str, Any]:
    """Ranker options: the bundle's own score weights, or them with the usage prior's weight replaced."""
    if prior is None:
        return {}
    return {"weights": dataclasses.replace(Bundle(model, providers="cpu").score_weights, prior=prior)}


def _task_scores(model: Path, task: Path, split: str, precision: str | None, prior: float | None,
                 bias: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(Q, 20) scores of `split` in label-id order through the SDK, the gold label ids, and how it ran."""
    ds = load_dataset(task)
    task_ids = task_sticker_ids(ds.info.details)
    label_of = {sid: i for i, sid in enumerate(task_ids)}
    gold = np.array([label_of[c.gold] for c in ds.split(split)])
    with temporary_ranker(model, task, precision=precision, bias=bias, **_weights(model, prior)) as ranker:
        _, scores = ranker.score_matrix(split_contexts(ds, split))
        column = {s.id: i for i, s in enumerate(ranker.pack.stickers)}
        ran = {"precision": ranker.bundle.precision, "weights": ranker.terms.weights.to_json()}
    return scores[:, [column[sid] for sid in task_ids]], gold, ran


def held_out_gain(scores: np.ndarray, gold: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Validation macro-F1 without and with a bias fitted on the other half (two folds, averaged):
    whether the bias generalises, judged without the test split."""
    half = np.random.default_rng(seed).permutation(len(gold)) < len(gold) // 2
    plain, fitted = [], []
    for fit_on in (half, ~half):
        bias = fit_label_bias(scores[fit_on], gold[fit_on], grid=score_grid(scores))
        plain.append(macro_f1(gold[~fit_on], scores[~fit_on].argmax(1)))
        fitted.append(macro_f1(gold[~fit_on], (scores[~fit_on] + bias).argmax(1)))
    return {"plain": float(np.mean(plain)), "bias": float(np.mean(fitted))}


def label_bias(model: Path, task: Path, precision: str | None = None, prior: float | None = None) -> dict[str, Any]:
    """One bias per task emoji fitted on the validation split's SDK scores for macro-F1, and the
    held-out check of it (:func:`held_out_gain`)."""
    scores, gold, _ = _task_scores(model, task, "validation", precision, prior)
    bias = fit_label_bias(scores, gold, grid=score_grid(scores))
    task_ids = task_sticker_ids(load_dataset(task).info.details)
    return {"bias": {sid: round(float(b), 6) for sid, b in zip(task_ids, bias)},
            "validation_macro_f1": {"plain": macro_f1(gold, scores.argmax(1)), "fitted": macro_f1(gold, (scores + bias).argmax(1))},
            "held_out_halves": held_out_gain(scores, gold)}


def closed_protocol(model: Path, task: Path, out: Path, precision: str | None = None,
                    prior: float | None = None, keep_scores: bool = False,
                    bias: dict[str, float] | None = None) -> dict[str, Any]:
    """Closed protocol: macro-F1 (official scorer), accuracy, top-5, MRR; writes predictions.txt.
    `bias`: the pack's per-sticker biases (none by default). `keep_scores` adds the (Q, 20) scores
    in label-id order as ``scores``."""
    scores, gold, ran = _task_scores(model, task, "test", precision, prior, bias)
    columns = list(range(scores.shape[1]))
    predicted = predicted_labels(scores, columns)
    write_predictions(out / "predictions.txt", predicted)
    result = closed_metrics(scores, gold, columns)
    result["accuracy_interval95"] = bootstrap_interval(100.0 * (predicted == gold), seed=0)
    result["precision"], result["weights"] = ran["precision"], ran["weights"]
    if keep_scores:
        result["scores"] = scores
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
    if "label_bias" in result:
        h = result["label_bias"]["held_out_halves"]
        lines.append(f"The pack carries one bias per emoji fitted on validation for macro-F1 (validation, fitted on one "
                     f"half and scored on the other: {h['plain']:.2f} without, {h['bias']:.2f} with); the open protocol "
                     "ranks without them.")
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
         out: Path = typer.Option(..., "--out", help="Directory for tweeteval.json, tweeteval.md, predictions.txt (and bias.json)."),
         precision: str | None = typer.Option(None, help="Bundle precision. [default: the SDK's choice]"),
         prior: float | None = typer.Option(None, "--prior-weight", help="Usage prior's weight, as an app's "
                                            "sdk.ScoreWeights would set it. [default: the bundle's]"),
         with_bias: bool = typer.Option(False, "--label-bias/--no-label-bias", help="Fit one bias per emoji on the "
                                        "validation split for macro-F1 and rank the test split over a pack that carries "
                                        "them (closed protocol only).")) -> None:
    """Rank TweetEval emoji's test split through the SDK and score it the field's way and an app's."""
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if with_bias:
        result["label_bias"] = label_bias(model, task, precision, prior)
        atomic.write_json(out / "bias.json", result["label_bias"]["bias"])
    result["closed"] = closed_protocol(model, task, out, precision, prior, bias=result.get("label_bias", {}).get("bias"))
    if full is not None:
        result["open"] = open_protocol(model, full, precision, prior)
    atomic.write_json(out / "tweeteval.json", result)
    atomic.write_text(out / "tweeteval.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
