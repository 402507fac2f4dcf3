"""TweetEval emoji with a pack the model has never seen: held-out emoji, no usage counts.

``python -m experiments.tweeteval_unseen --model BUNDLE --task DIR --out DIR [--seen-model BUNDLE]``
takes a dataset made with ``intra data tweeteval --catalog task --hold-out N`` (the held-out
emoji's tweets are out of train and validation, and alone in test) and a bundle trained on it.
Each test tweet is ranked among all 20 emoji through `sdk.Ranker` with the usage prior off (an
app's own pack has no counts, and these emoji never had any), and compared with:

- **zero-shot**: the cosine of the tweet against each emoji's English description through the
  frozen MiniLM that the text side starts from (no training at all);
- optionally **seen**: a bundle trained with every emoji (``--seen-model``), on the same tweets.

Writes ``unseen.json`` and ``unseen.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks.tweeteval import MODEL_OPTION, closed_protocol
from sdk import atomic
from sdk.dataset import Dataset, load_dataset
from sdk.errors import DatasetError
from training.data.tweeteval import RULES, task_sticker_ids
from training.metrics import paired_difference
from training.tweeteval_baselines import text_and_labels
from training.tweeteval_scoring import closed_metrics


def english_description(verbal: str) -> str:
    """The English half of a bilingual CLDR description ("two hearts: love, ... | 两颗心：...")."""
    return verbal.split(" | ", 1)[0].strip()


def zero_shot_scores(ds: Dataset, model_dir: Path | None = None) -> np.ndarray:
    """(Q, 20) cosine of each test tweet against each task emoji's description, frozen MiniLM."""
    from training.probes import FrozenFeatures

    by_id = {s.id: s for s in ds.stickers}
    descriptions = [english_description(by_id[sid].attributes.get("verbal", "")) for sid in task_sticker_ids(ds.info.details)]
    encoder = FrozenFeatures(model_dir, progress=False)
    return encoder(text_and_labels(ds, "test")[0]) @ encoder(descriptions).T


def _correct_and_rr(scores: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gold_score = scores[np.arange(len(gold)), gold]
    rank = (scores >= gold_score[:, None]).sum(1)
    return (rank == 1).astype(float), 1.0 / rank


def unseen_rows(model: Path, task: Path, out: Path, seen_model: Path | None = None,
                text_model: Path | None = None) -> dict[str, Any]:
    """Int-RA on unseen emoji (prior off), zero-shot, and optionally the seen model; paired on MRR."""
    ds = load_dataset(task)
    held = ds.info.details.get("held_out") or []
    if not held:
        raise DatasetError(f"{task}: holds no held-out emoji; build it with `intra data tweeteval --catalog task --hold-out N`")
    gold = text_and_labels(ds, "test")[1]
    columns = list(range(len(task_sticker_ids(ds.info.details))))
    rows: dict[str, dict[str, Any]] = {}
    per_tweet: dict[str, np.ndarray] = {}
    for name, bundle in (("Int-RA, trained without them", model), ("Int-RA, trained with them", seen_model)):
        if bundle is not None:
            result = closed_protocol(bundle, task, out / name.split(", ")[1].replace(" ", "-"), prior=0.0, keep_scores=True)
            per_tweet[name] = _correct_and_rr(result.pop("scores"), gold)[1]
            rows[name] = result
    zero = zero_shot_scores(ds, text_model)
    rows["zero-shot (frozen MiniLM, descriptions)"] = closed_metrics(zero, gold, columns)
    per_tweet["zero-shot (frozen MiniLM, descriptions)"] = _correct_and_rr(zero, gold)[1]
    reference = "Int-RA, trained without them"
    gaps = {name: paired_difference(100 * per_tweet[reference], 100 * rr) for name, rr in per_tweet.items() if name != reference}
    return {"held_out": held, "n_test": len(gold), "rows": rows, "mrr_gap_vs_unseen_int_ra": gaps}


def markdown(result: dict[str, Any]) -> str:
    """The unseen-emoji table, with the paired MRR gaps."""
    lines = ["# TweetEval emoji: emoji the model never saw", "",
             f"Held out of training: {', '.join(result['held_out'])}. {result['n_test']} test tweets whose emoji is one of them, "
             f"each ranked among all 20 emoji with no usage counts; {RULES['leak']}.", "",
             "| row | accuracy (top-1) | top-5 | MRR | macro-F1 |", "| --- | --- | --- | --- | --- |"]
    for name, m in result["rows"].items():
        lines.append(f"| {name} | {m['accuracy']:.1f} | {m['top5']:.1f} | {m['mrr']:.1f} | {m['macro_f1']:.1f} |")
    lines.append("")
    for name, g in result["mrr_gap_vs_unseen_int_ra"].items():
        lines.append(f"- MRR of Int-RA trained without them minus {name}: {g['mean']:+.1f} "
                     f"(paired 95% {g['interval'][0]:+.1f} to {g['interval'][1]:+.1f}; "
                     f"{'beyond' if g['beyond_noise'] else 'within'} noise).")
    return "\n".join(lines) + "\n"


def main(model: Path = MODEL_OPTION,
         task: Path = typer.Option(..., "--task", help="`intra data tweeteval --catalog task --hold-out N` dataset."),
         out: Path = typer.Option(..., "--out", help="Directory for unseen.json, unseen.md and the predictions files."),
         seen_model: Path | None = typer.Option(None, "--seen-model", help="A bundle trained with every emoji, for comparison."),
         text_model: Path | None = typer.Option(None, "--text-model", help="Frozen encoder for the zero-shot row. "
                                                "[default: the shipped MiniLM]")) -> None:
    """Measure held-out emoji ranked among all 20 with no usage counts, against zero-shot."""
    out.mkdir(parents=True, exist_ok=True)
    result = unseen_rows(model, task, out, seen_model, text_model)
    atomic.write_json(out / "unseen.json", result)
    atomic.write_text(out / "unseen.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
