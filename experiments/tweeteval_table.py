"""TweetEval emoji's whole closed-protocol table in one command: every row over its seeds, each
paired against Int-RA on the same test tweets.

``python -m experiments.tweeteval_table --task DIR --intra BENCH ... --classifier CLF ... --out FILE.md``
reads what the runs wrote (``benchmarks.tweeteval``'s folders for Int-RA, one per seed, and for
other Int-RA runs with ``--other NAME=BENCH``; ``training.tweeteval_classifier``'s folders), fits
the classic rows and the probe on frozen MiniLM itself, and writes the table with means ± std over
seeds and a paired bootstrap interval of each row's macro-F1 gap to Int-RA.
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
from training.data.tweeteval import RULES, task_sticker_ids
from training.evaluate import command_line
from training.metrics import paired_macro_f1
from training.probes import FrozenFeatures, ProbeConfig, probe_emoji
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


def probe_row(task: Path, seeds: int, cache: Path | None = None) -> Row:
    """probe-emoji: softmax regression over the 20 emoji on frozen MiniLM features (one per seed)."""
    ds = load_dataset(task)
    test = ds.split("test")
    gold = text_and_labels(ds, "test")[1]
    index = ds.sticker_index()
    columns = [index[sid] for sid in task_sticker_ids(ds.info.details)]  # the task's label order
    features = FrozenFeatures(cache_dir=cache, cfg=ProbeConfig(), progress=True)
    metrics, predicted = [], []
    for seed in range(seeds):
        scores = probe_emoji(ds, features, test, ProbeConfig(seed=seed))
        metrics.append(closed_metrics(scores, gold, columns))
        predicted.append(scores[:, columns].argmax(1))
    return Row("probe-emoji (frozen MiniLM)", metrics, np.stack(predicted))


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
              "Command: `" + command_line(sys.argv) + "`", ""]
    return "\n".join(lines)


def named_folders(entries: list[str]) -> dict[str, list[Path]]:
    """`NAME=FOLDER` entries grouped by name, in order (one folder per seed)."""
    out: dict[str, list[Path]] = {}
    for entry in entries:
        row, sep, folder = entry.partition("=")
        if not sep or not row or not folder:
            raise typer.BadParameter(f"expected NAME=FOLDER, got {entry!r}", param_hint="--other")
        out.setdefault(row, []).append(Path(folder))
    return out


def build_table(task: Path, intra: list[Path], classifier: list[Path], rounds: int = 2000,
                intra_setting: list[Path] | None = None, setting_name: str | None = None,
                name: str = "Int-RA (SDK)", others: dict[str, list[Path]] | None = None, probe_seeds: int = 0,
                cache: Path | None = None) -> dict[str, Any]:
    """Every row on `task`'s test split, paired against Int-RA's shipped default (`intra`, called
    `name`); `intra_setting` is the same seeds ranked under another documented setting (called
    `setting_name`, default: `name` with "prior weight for MRR"), `others`
    other Int-RA runs by row name, `probe_seeds` the probe-emoji row's seeds (0: no such row)."""
    gold = text_and_labels(load_dataset(task), "test")[1]
    reference = intra_row(intra, gold, name)
    setting_name = setting_name or f"{name}, prior weight for MRR"
    ranked = {reference.name: intra, **({setting_name: intra_setting} if intra_setting else {}), **(others or {})}
    intra_rows = [reference, *[intra_row(benches, gold, row) for row, benches in list(ranked.items())[1:]]]
    classic, classic_info = classic_rows(task)
    rows = [*intra_rows, *(classifier_rows(classifier, gold) if classifier else []),
            *([probe_row(task, probe_seeds, cache)] if probe_seeds else []), *classic]
    opened = {row: o for row, benches in ranked.items() if (o := open_summary(benches)) is not None}
    return {"reference": reference.name, "n_test": len(gold), "rows": table(rows, reference, gold, rounds),
            "open": opened, "classic": classic_info}


def main(task: Path = typer.Option(..., "--task", help="`intra data tweeteval --catalog task` dataset."),
         intra: list[Path] = typer.Option(..., "--intra", help="A `benchmarks.tweeteval` output folder; once per seed."),
         setting: list[Path] = typer.Option([], "--intra-mrr", help="A `benchmarks.tweeteval --prior-weight W` folder "
                                            "(the weight best for MRR on validation); once per seed."),
         classifier: list[Path] = typer.Option([], "--classifier", help="A `training.tweeteval_classifier` output folder; once per seed."),
         other: list[str] = typer.Option([], "--other", help="NAME=FOLDER: another Int-RA run's `benchmarks.tweeteval` "
                                         "folder, paired against --intra; once per seed, with the same NAME."),
         name: str = typer.Option("Int-RA (SDK)", "--name", help="The --intra row's name."),
         probe_seeds: int = typer.Option(3, "--probe-seeds", min=0, help="Seeds of the probe-emoji row (0: leave it out)."),
         cache: Path | None = typer.Option(None, "--cache", help="Folder for the probe's frozen features (.npy), reused by a later run."),
         out: Path = typer.Option(..., "--out", help="Markdown file to write (a .json beside it holds the figures)."),
         rounds: int = typer.Option(2000, "--rounds", help="Bootstrap resamples.")) -> None:
    """Write TweetEval emoji's closed-protocol table: every row over its seeds, paired against Int-RA."""
    result = build_table(task, intra, classifier, rounds, setting, name=name, others=named_folders(other),
                         probe_seeds=probe_seeds, cache=cache)
    atomic.write_json(out.with_suffix(".json"), result)
    atomic.write_text(out, markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
