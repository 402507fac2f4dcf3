"""How often `diverse=True` changes the top 5, on a dataset's test conversations.

    python -m experiments.diversity --model BUNDLE --data DIR --out DIR [--split test]

A pack is built from the dataset with the bundle; every conversation of the split is ranked
with and without `diverse`. Writes DIR/diversity.json and DIR/diversity.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def measure(model: Path, data: Path, split: str = "test", top_k: int = 5) -> dict[str, Any]:
    """Share of conversations whose top k changes, and the pack's near-duplicate pairs."""
    from sdk.dataset import load_dataset
    from sdk.diversity import DIVERSE_THRESHOLD
    from sdk.temp_pack import temporary_ranker

    ds = load_dataset(data)
    convs = ds.split(split)
    contexts = [c.turns() for c in convs]
    knowledge = [c.knowledge_dict() for c in convs]
    with temporary_ranker(model, data) as ranker:
        plain = ranker.rank_many(contexts, top_k, knowledge)
        diverse = ranker.rank_many(contexts, top_k, knowledge, diverse=True)
        vectors = ranker.pack.embeddings
    gram = vectors @ vectors.T
    pairs = int((np.triu(gram, 1) > DIVERSE_THRESHOLD).sum())
    changed = [[m.sticker_id for m in a.matches] != [m.sticker_id for m in b.matches] for a, b in zip(plain, diverse)]
    return {"model": str(model), "data": str(data), "split": split, "conversations": len(convs), "stickers": len(vectors),
            "threshold": DIVERSE_THRESHOLD, "near_duplicate_pairs": pairs, "top_k": top_k,
            "changed_fraction": float(np.mean(changed)), "changed": int(np.sum(changed)), "precision": ranker.bundle.precision}


def markdown(r: dict[str, Any]) -> str:
    return (f"# diverse=True on {r['data']} ({r['split']})\n\n"
            f"{r['stickers']} stickers, {r['near_duplicate_pairs']} pairs of them with cosine above {r['threshold']}; "
            f"{r['conversations']} conversations ranked at {r['precision']}: the top {r['top_k']} changes for "
            f"{r['changed']} ({100 * r['changed_fraction']:.1f}%).\n")


@app.command()
def main(
    model: Path = typer.Option(..., help="Model bundle."),
    data: Path = typer.Option(..., help="Dataset directory."),
    out: Path = typer.Option(..., help="Directory for diversity.json and diversity.md."),
    split: str = typer.Option("test", help="Split to rank."),
) -> None:
    """Measure how often diverse=True changes the top 5."""
    from sdk import atomic

    result = measure(model, data, split)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "diversity.json", result)
    atomic.write_text(out / "diversity.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    app()
