"""Stickers inside the conversation: ranking with and without the stickers a chat already holds.

    python -m experiments.sticker_turns synthetic --model BUNDLE --data DIR --out DIR
    python -m experiments.sticker_turns goemoji --model BUNDLE [--model BUNDLE ...] --data DIR --source ../shared/data --out DIR

- GoEmoji (dev split = our test split): the comments with several distinct catalog emoji. The gold
  is the last one (as the dataset has it); the earlier ones become sticker turns before the text.
  Without them the context is the text alone, exactly the dataset's conversation.
- Synthetic world (test split): a sticker turn is inserted before the sender's last turn: one of
  the same intention as the gold (not the gold itself), the way an earlier sticker sets the mood,
  and, as a control, one of another intention. On the validation split, ways of reading a sticker
  turn are compared (as text: descriptions, label, both; as its vector: the query moved toward
  it): the SDK's reading was chosen there.

Both are ranked through `sdk.Ranker` (the pack built from the dataset, so usage counts included).
Writes DIR/sticker_turns.json and DIR/sticker_turns.md.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks.output import write_result
from sdk.pack import sticker_turn_text
from sdk.temp_pack import temporary_ranker

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
METRICS = ("R@1", "R@5", "R@10", "MRR")


def scored(ranker: Any, contexts: Sequence[Any], gold: Sequence[str], knowledge: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
    """Per-conversation R@1/5/10 and reciprocal rank of the gold sticker, as the SDK ranks."""
    return gold_metrics(ranker, ranker.score_matrix(list(contexts), knowledge)[1], gold)


def gold_metrics(ranker: Any, scores: np.ndarray, gold: Sequence[str]) -> dict[str, np.ndarray]:
    """METRICS per conversation from (Q, S) scores over the ranker's pack."""
    from training.metrics import per_query_metrics

    per = per_query_metrics(scores, np.array([ranker.pack.ids.index(g) for g in gold]), ranker.pack.label_ids())
    return {m: per[m] for m in METRICS}


def summary(per: dict[str, np.ndarray]) -> dict[str, Any]:
    from training.metrics import bootstrap_interval

    return {m: {"mean": float(per[m].mean()), "ci95": bootstrap_interval(per[m])} for m in METRICS}


def goemoji_cases(source: Path, split_file: str = "dev.tsv", keep: set[str] | None = None) -> list[dict[str, Any]]:
    """Comments of `split_file` (those whose conversation id is in `keep`, if given) with several
    distinct catalog emoji: text, earlier emoji ids, gold id."""
    from training.data.goemoji import emoji_clusters, load_emoji_catalog, normalize_key, read_tsv, strip_emoji

    catalog = load_emoji_catalog(source)
    cases = []
    for text, _, cid in read_tsv(source / "goemotions" / split_file):
        if keep is not None and f"ge-{cid}" not in keep:
            continue
        known = [catalog[normalize_key(c)] for _, _, c in emoji_clusters(text) if normalize_key(c) in catalog]
        context = strip_emoji(text)
        if not known or not context:
            continue
        gold = known[-1].sticker.id
        earlier = list(dict.fromkeys(e.sticker.id for e in known if e.sticker.id != gold))
        if earlier:
            cases.append({"id": cid, "text": context, "earlier": earlier, "gold": gold})
    return cases


def measure_goemoji(models: Sequence[Path], data: Path, source: Path, split: str = "test") -> dict[str, Any]:
    from sdk.dataset import load_dataset

    if split == "test":  # the dataset's test split is GoEmotions dev
        cases = goemoji_cases(source)
    else:
        cases = goemoji_cases(source, "train.tsv", {c.id for c in load_dataset(data).split(split)})
    if not cases:
        raise typer.BadParameter(f"{source}: no {split} comment with several distinct catalog emoji")
    without = [[("user", c["text"])] for c in cases]
    with_turns = [[{"speaker": "user", "sticker": e} for e in c["earlier"]] + [{"speaker": "user", "text": c["text"]}] for c in cases]
    gold = [c["gold"] for c in cases]
    runs = []
    for model in models:
        with temporary_ranker(model, data) as ranker:
            runs.append({"model": str(model), "precision": ranker.bundle.precision,
                         "without": summary(scored(ranker, without, gold)), "with": summary(scored(ranker, with_turns, gold))})
    return {"dataset": "goemoji", "split": "test (GoEmotions dev)" if split == "test" else split, "conversations": len(cases),
            "earlier_stickers": int(sum(len(c["earlier"]) for c in cases)), "runs": runs, "mean": _seed_mean(runs)}


def synthetic_cases(data: Path, split: str = "test", seed: int = 0) -> dict[str, Any]:
    """`split` with a sticker turn before the last turn: same intention (not the gold) and other intention."""
    from sdk.dataset import load_dataset

    ds = load_dataset(data)
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for s in ds.stickers:
        by_label.setdefault(s.label or "", []).append(s.id)
    out: dict[str, Any] = {"without": [], "same": [], "other": [], "gold": [], "knowledge": []}
    for c in ds.split(split):
        turns = [{"speaker": t.speaker, "text": t.text} for t in c.context]
        mates = [s for s in by_label[c.label or ""] if s != c.sticker_id] or by_label[c.label or ""]
        stranger = rng.choice([s for lab, ids in by_label.items() if lab != c.label for s in ids])
        out["without"].append(turns)
        for key, sid in (("same", rng.choice(mates)), ("other", stranger)):
            out[key].append(turns[:-1] + [{"speaker": turns[-1]["speaker"], "sticker": sid}] + turns[-1:])
        out["gold"].append(c.sticker_id)
        out["knowledge"].append(c.knowledge_dict())
    return out


#: how a sticker turn could be read, compared on validation (the SDK reads the label: sticker_turn_text)
ENCODINGS = {"descriptions": lambda s: sticker_turn_text(replace(s, label=None)), "label": sticker_turn_text,
             "label: descriptions": lambda s: f"{s.label}: {sticker_turn_text(replace(s, label=None))}"}


#: the alternative to text: the query moved toward the earlier sticker's vector, q + beta * v (renormalised)
VECTOR_BETAS = (0.1, 0.25, 0.5)


def scored_by_vector(ranker: Any, contexts: list, gold: Sequence[str], knowledge: Sequence[Any], beta: float) -> dict[str, np.ndarray]:
    """Like `scored`, the sticker turns left out of the text and added to the query as vectors instead."""
    from sdk.scoring import l2_normalise

    text_only = [[t for t in ctx if "sticker" not in t] for ctx in contexts]
    vectors = np.stack([sum((ranker.pack.embeddings[ranker.pack.ids.index(t["sticker"])] for t in ctx if "sticker" in t),
                            np.zeros(ranker.pack.embeddings.shape[1], np.float32)) for ctx in contexts])
    logits, queries = ranker.query(text_only, knowledge)
    return gold_metrics(ranker, ranker.scores(l2_normalise(queries + beta * vectors), logits), gold)


def _as_text(contexts: list, ranker: Any, encode: Any) -> list:
    stickers = dict(zip(ranker.pack.ids, ranker.pack.stickers))
    return [[{"speaker": t["speaker"], "text": encode(stickers[t["sticker"]])} if "sticker" in t else t for t in ctx] for ctx in contexts]


def measure_synthetic(model: Path, data: Path) -> dict[str, Any]:
    """Test: without / with a sticker turn of the same / another intention; validation: the encodings."""
    test, val = synthetic_cases(data, "test"), synthetic_cases(data, "validation")
    with temporary_ranker(model, data) as ranker:
        run: dict[str, Any] = {"model": str(model), "precision": ranker.bundle.precision}
        for key, name in (("without", "without"), ("same", "with (same intention)"), ("other", "with (other intention)")):
            run[name] = summary(scored(ranker, test[key], test["gold"], test["knowledge"]))
        encodings = {f"{key}, read as {enc}": summary(scored(ranker, _as_text(val[key], ranker, fn), val["gold"], val["knowledge"]))
                     for key in ("same", "other") for enc, fn in ENCODINGS.items()}
        for key in ("same", "other"):
            for beta in VECTOR_BETAS:
                encodings[f"{key}, as its vector (query + {beta} v)"] = summary(
                    scored_by_vector(ranker, val[key], val["gold"], val["knowledge"], beta))
        encodings["without"] = summary(scored(ranker, val["without"], val["gold"], val["knowledge"]))
    return {"dataset": "synthetic", "split": "test", "conversations": len(test["gold"]), "runs": [run],
            "validation_encodings": encodings}


def _seed_mean(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant in ("without", "with"):
        out[variant] = {m: {"mean": float(np.mean([r[variant][m]["mean"] for r in runs])),
                            "std": float(np.std([r[variant][m]["mean"] for r in runs]))} for m in METRICS}
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Sticker turns in the conversation: {r['dataset']} ({r['split']}, {r['conversations']} conversations)", ""]
    variants = [k for k in r["runs"][0] if k not in ("model", "precision")]
    lines += ["| run | context | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for run in r["runs"]:
        for v in variants:
            cells = [f"{100 * run[v][m]['mean']:.1f} [{100 * run[v][m]['ci95'][0]:.1f}, {100 * run[v][m]['ci95'][1]:.1f}]" for m in METRICS]
            lines.append(f"| {Path(run['model']).name} ({run['precision']}) | {v} | " + " | ".join(cells) + " |")
    if "mean" in r:
        lines += ["", f"Mean ± std over {len(r['runs'])} seeds:", "", "| context | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        for v, row in r["mean"].items():
            lines.append(f"| {v} | " + " | ".join(f"{100 * row[m]['mean']:.1f} ± {100 * row[m]['std']:.1f}" for m in METRICS) + " |")
    if "validation_encodings" in r:
        lines += ["", "How a sticker turn is read, on the validation split (chooses the SDK's reading):", "",
                  "| sticker turn | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        for name, row in r["validation_encodings"].items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * row[m]['mean']:.1f}" for m in METRICS) + " |")
    lines += ["", "Brackets: 95% bootstrap interval over conversations."]
    return "\n".join(lines) + "\n"


def _write(out: Path, result: dict[str, Any]) -> None:
    write_result(out, "sticker_turns", result, markdown(result))


@app.command("synthetic")
def synthetic_cmd(model: Path = typer.Option(..., help="Model bundle."), data: Path = typer.Option(..., help="Synthetic dataset directory."),
                  out: Path = typer.Option(..., help="Directory for sticker_turns.json/.md.")) -> None:
    """Test conversations with an earlier sticker of the same (or another) intention."""
    _write(out, measure_synthetic(model, data))


@app.command("goemoji")
def goemoji_cmd(model: list[Path] = typer.Option(..., help="Model bundle(s), one per seed."),
                data: Path = typer.Option(..., help="GoEmoji dataset directory (intra data goemoji)."),
                source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (GoEmotions and the emoji)."),
                out: Path = typer.Option(..., help="Directory for sticker_turns.json/.md."),
                split: str = typer.Option("test", help="test (GoEmotions dev) or validation (carved out of train, never trained on).")) -> None:
    """Comments with several distinct emoji, with and without the earlier ones as sticker turns."""
    _write(out, measure_goemoji(model, data, source, split))


if __name__ == "__main__":
    app()
