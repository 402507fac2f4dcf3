"""TweetEval emoji's whole closed-protocol table in one command: every row over its seeds, each
paired against Int-RA on the same test tweets.

``python -m experiments.tweeteval_table --task DIR --intra BENCH ... --classifier CLF ... --out FILE.md``
reads what the runs wrote (``benchmarks.tweeteval``'s folders for Int-RA, one per seed;
``training.tweeteval_classifier``'s folders), fits the classic rows itself, and writes the table
with means ± std over seeds and a paired bootstrap interval of each row's macro-F1 gap to Int-RA.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.errors import DatasetError
from training.data.tweeteval import RULES
from training.metrics import paired_macro_f1
from training.tweeteval_baselines import baseline_rows, text_and_labels
from training.tweeteval_scoring import closed_metrics, read_predictions

METRICS = ("macro_f1", "accuracy", "top5", "mrr")
OPEN_METRICS = ("R@1", "R@5", "R@10", "mrr")


@dataclass
class Row:
    """One row of the table: per-seed metrics and per-seed test predictions, (seeds, Q)."""

    name: str
    metrics: list[dict[str, float]]
    predicted: np.ndarray


def _checked(path: Path, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    if len(predicted) != len(gold):
        raise DatasetError(f"{path}: {len(predicted)} predictions, but the test split has {len(gold)} tweets")
    return predicted


def intra_row(benches: list[Path], gold: np.ndarray, name: str = "Int-RA (SDK)") -> Row:
    """Int-RA's seeds as `benchmarks.tweeteval` scored them through the SDK."""
    metrics, predicted = [], []
    for bench in benches:
        metrics.append(json.loads((bench / "tweeteval.json").read_text(encoding="utf-8"))["closed"])
        file = bench / "predictions.txt"
        predicted.append(_checked(file, np.array(read_predictions(file)), gold))
    return Row(name, metrics, np.stack(predicted))


def _classifier_logits(run: Path, gold: np.ndarray, with_bias: bool) -> np.ndarray:
    logits = _checked(run / "test_logits.npy", np.load(run / "test_logits.npy"), gold)
    if with_bias:
        logits = logits + np.array(json.loads((run / "result.json").read_text(encoding="utf-8"))["label_bias"])
    return logits


def classifier_rows(runs: list[Path], gold: np.ndarray) -> list[Row]:
    """The fine-tuned classifier's seeds, plain and with its validation-fitted label bias."""
    rows = []
    for name, with_bias in (("MiniLM classifier, plain", False), ("MiniLM classifier + label bias", True)):
        logits = [_classifier_logits(run, gold, with_bias) for run in runs]
        rows.append(Row(name, [closed_metrics(lg, gold, range(lg.shape[1])) for lg in logits],
                        np.stack([lg.argmax(1) for lg in logits])))
    return rows


def classic_rows(task: Path) -> tuple[list[Row], dict[str, Any]]:
    """Majority and TF-IDF + SVM (deterministic: one run each), fitted here on the same split."""
    result = baseline_rows(load_dataset(task))
    rows = [Row(name, [m], result["predicted"][name][None]) for name, m in result["rows"].items()]
    return rows, {"validation_macro_f1_by_C": result["validation_macro_f1_by_C"], "chosen_C": result["chosen_C"]}


def summary(values: list[float]) -> dict[str, float | int]:
    """Mean, sample std (0 for one seed) and the number of seeds."""
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "seeds": len(arr)}


def table(rows: list[Row], reference: Row, gold: np.ndarray, rounds: int = 2000) -> dict[str, Any]:
    """Each row's metric summaries, and `reference` minus the row in macro-F1, paired over tweets."""
    out = {}
    for row in rows:
        entry: dict[str, Any] = {m: summary([s[m] for s in row.metrics]) for m in METRICS}
        if row is not reference:
            entry["reference_minus_row"] = paired_macro_f1(gold, reference.predicted, row.predicted, rounds=rounds)
        out[row.name] = entry
    return out


def open_summary(benches: list[Path]) -> dict[str, Any] | None:
    """The open protocol (every emoji of the catalog) over Int-RA's seeds, where it was run."""
    runs = [json.loads((b / "tweeteval.json").read_text(encoding="utf-8")).get("open") for b in benches]
    if not all(runs):
        return None
    return {"stickers": runs[0]["stickers"], **{m: summary([r[m] for r in runs]) for m in OPEN_METRICS}}


def _cell(s: dict[str, float | int]) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["seeds"] > 1 else f"{s['mean']:.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The table, the leak rule, and which gaps are beyond noise."""
    ref = result["reference"]
    lines = ["# TweetEval emoji: the closed-protocol table", "",
             f"Test split: {result['n_test']} tweets; {RULES['leak']}. Mean ± std over seeds (seeds column); "
             f"the last column is {ref} minus the row in macro-F1, with its paired bootstrap 95% interval.", "",
             "| row | seeds | macro-F1 | accuracy | top-5 | MRR | Δ macro-F1 vs " + ref + " |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, e in result["rows"].items():
        gap = e.get("reference_minus_row")
        gap_cell = "—" if gap is None else (f"{gap['mean']:+.1f} ({gap['interval'][0]:+.1f} to {gap['interval'][1]:+.1f})"
                                            + (" beyond noise" if gap["beyond_noise"] else " within noise"))
        lines.append(f"| {name} | {e['macro_f1']['seeds']} | " + " | ".join(_cell(e[m]) for m in METRICS) + f" | {gap_cell} |")
    for name, o in result["open"].items():
        lines += ["", f"Open protocol ({o['stickers']} emoji, {name}): "
                  + ", ".join(f"{m.replace('mrr', 'MRR')} {_cell(o[m])}" for m in OPEN_METRICS) + "."]
    lines += ["", f"SVM C chosen on validation macro-F1: {result['classic']['chosen_C']}.", "",
              "Command: `" + " ".join(["python -m experiments.tweeteval_table", *sys.argv[1:]]) + "`", ""]
    return "\n".join(lines)


def build_table(task: Path, intra: list[Path], classifier: list[Path], rounds: int = 2000,
                intra_setting: list[Path] | None = None, setting_name: str = "Int-RA (SDK), prior weight for MRR") -> dict[str, Any]:
    """Every row on `task`'s test split, paired against Int-RA's shipped default (`intra`);
    `intra_setting` is the same seeds ranked under another documented setting."""
    gold = text_and_labels(load_dataset(task), "test")[1]
    reference = intra_row(intra, gold)
    setting = [intra_row(intra_setting, gold, setting_name)] if intra_setting else []
    classic, classic_info = classic_rows(task)
    rows = [reference, *setting, *(classifier_rows(classifier, gold) if classifier else []), *classic]
    opened = {}
    for row, benches in [(reference, intra), *[(r, intra_setting or []) for r in setting]]:
        if (o := open_summary(benches)) is not None:
            opened[row.name] = o
    return {"reference": reference.name, "n_test": len(gold), "rows": table(rows, reference, gold, rounds),
            "open": opened, "classic": classic_info}


def main(task: Path = typer.Option(..., "--task", help="`intra data tweeteval --catalog task` dataset."),
         intra: list[Path] = typer.Option(..., "--intra", help="A `benchmarks.tweeteval` output folder; once per seed."),
         setting: list[Path] = typer.Option([], "--intra-mrr", help="A `benchmarks.tweeteval --prior-weight W` folder "
                                            "(the weight best for MRR on validation); once per seed."),
         classifier: list[Path] = typer.Option([], "--classifier", help="A `training.tweeteval_classifier` output folder; once per seed."),
         out: Path = typer.Option(..., "--out", help="Markdown file to write (a .json beside it holds the figures)."),
         rounds: int = typer.Option(2000, "--rounds", help="Bootstrap resamples.")) -> None:
    """Write TweetEval emoji's closed-protocol table: every row over its seeds, paired against Int-RA."""
    result = build_table(task, intra, classifier, rounds, setting)
    atomic.write_json(out.with_suffix(".json"), result)
    atomic.write_text(out, markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
