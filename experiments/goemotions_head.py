"""The intention head on every GoEmotions comment of a split (not only those with an emoji).

    python -m experiments.goemotions_head --run RUN --source ../shared/data [--split dev] --out DIR

Each comment's label is its first non-neutral label (the GoEmoji rule, `pick_label`); the head
predicts one label. Reported: accuracy and macro-F1 over the 28 labels, beside the probe's
intention regression on frozen all-MiniLM-L6-v2 features trained on the same training comments.
For context only: the published BERT-base figure (macro-F1 0.46, Demszky et al. 2020) is a
multi-label classifier with per-label thresholds, so it is not the same measurement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
BERT_BASE_MACRO_F1 = 0.46  # Demszky et al. (2020), GoEmotions test set, multi-label


@app.command()
def main(
    run: Path = typer.Option(..., help="Run directory made by `intra train`."),
    source: Path = typer.Option(..., help="The shared data directory (with goemotions/)."),
    out: Path = typer.Option(..., help="Directory for head.json and head.md."),
    split: str = typer.Option("dev", help="GoEmotions split file: dev (our test) or train."),
    data: Path = typer.Option(None, help="The GoEmoji dataset directory, for the probe's training comments. [default: the run's]"),
    cache: Path = typer.Option(None, help="Feature cache of the probe (e.g. a paper table's OUT/cache). [default: OUT/cache]"),
) -> None:
    """Accuracy and macro-F1 of the run's intention head on every comment of a GoEmotions split."""
    import torch

    from sdk import atomic
    from sdk.dataset import Conversation, Turn, load_dataset
    from sdk.labels import LABELS
    from training.data.goemoji import pick_label, read_tsv
    from training.metrics import classification_metrics
    from training.model_inputs import context_batch
    from training.probes import FrozenFeatures, ProbeConfig, context_text, softmax_regression
    from training.run_dir import load_run

    rows = read_tsv(source / "goemotions" / f"{split}.tsv")
    convs = [Conversation(id=cid, context=(Turn("user", text),), label=pick_label(ids)) for text, ids, cid in rows]
    gold = np.array([c.label_index for c in convs])
    model, tokenizer, _, conf = load_run(run)
    preds = []
    with torch.no_grad():
        for k in range(0, len(convs), 64):
            ids, mask = context_batch(convs[k:k + 64], tokenizer, False)
            logits = model.head(model.encode_text(ids, mask))
            preds.append(logits.argmax(-1).numpy())
    head = classification_metrics(np.concatenate(preds), gold)
    ds = load_dataset(data or conf["dataset"]["path"])
    train = list(ds.split("train")) + list(ds.splits.get("extra_intention", ()))
    features = FrozenFeatures(cache_dir=cache or out / "cache", cfg=ProbeConfig(), progress=True)
    layer = softmax_regression(features([context_text(c) for c in train]), np.array([c.label_index for c in train]),
                               len(LABELS), ProbeConfig().intention_epochs, ProbeConfig())
    with torch.no_grad():
        probe_pred = layer(torch.from_numpy(features([context_text(c) for c in convs]))).argmax(-1).numpy()
    probe = classification_metrics(probe_pred, gold)
    result = {"split": split, "comments": len(convs), "run": str(run), "head": head, "probe_intention": probe,
              "bert_base_macro_f1_published": BERT_BASE_MACRO_F1}
    atomic.write_json(out / "head.json", result)
    text = "\n".join([f"# Intention head on every GoEmotions {split} comment ({len(convs)})", "",
                      "| classifier | accuracy | macro-F1 |", "|---|---|---|",
                      f"| Int-RA head ({run}) | {100 * head['accuracy']:.1f} | {100 * head['macro_f1']:.1f} |",
                      f"| probe-intention (frozen MiniLM, train + extra comments) | {100 * probe['accuracy']:.1f} | {100 * probe['macro_f1']:.1f} |",
                      f"| BERT-base, published (multi-label, thresholds; context only) | - | {100 * BERT_BASE_MACRO_F1:.1f} |", ""])
    atomic.write_text(out / "head.md", text)
    typer.echo(text)


if __name__ == "__main__":
    app()
