"""A GoEmoji lever, measured on validation only: per-sticker weights on top of Int-RA's score.

    python -m experiments.emoji_head --model BUNDLE [--model BUNDLE ...] --data DIR --out DIR

probe-emoji wins on GoEmoji with free per-emoji weights. This fits the same softmax regression
(probe-emoji's recipe: Adam, lr 0.05, 300 full-batch epochs) on the bundle's own H^T of the
training split's contexts, then ranks validation by the head alone and by
``final score + alpha * log P_head(sticker | context)``. Writes DIR/emoji_head.json and .md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from benchmarks.output import write_result

from .validation_scores import rows_table, validation_scores

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5)
WEIGHT_DECAYS = (1e-3, 1e-2)


def measure_bundle(model: Path, data: Path) -> dict[str, Any]:
    from sdk.scoring import log_softmax
    from training.probes import ProbeConfig, softmax_regression

    v = validation_scores(model, data)
    train = v.ds.split("train")
    know = [c.knowledge_dict() for c in train]
    pooled = {"train": v.bundle.encode_contexts([[t.text for t in c.context] for c in train], know if v.ranker.use_knowledge else None),
              "validation": v.bundle.encode_contexts([[t.text for t in c.context] for c in v.convs],
                                                     [c.knowledge_dict() for c in v.convs]
                                                     if v.ranker.use_knowledge else None)}
    index = {s: i for i, s in enumerate(v.ranker.pack.ids)}
    rows = {"final score (the default)": v.metrics(v.final)}
    y = np.array([index[c.gold] for c in train])
    for wd in WEIGHT_DECAYS:
        # probe-emoji's own recipe (training.probes): Adam, lr 0.05, 300 full-batch epochs, seed 0
        head = softmax_regression(pooled["train"].astype(np.float32), y, len(index), 300, ProbeConfig(weight_decay=wd))
        with torch.no_grad():
            lp = log_softmax(head(torch.from_numpy(pooled["validation"].astype(np.float32))).numpy().astype(np.float64))
        rows[f"head alone (wd {wd})"] = v.metrics(lp)
        rows.update({f"final + {a} log P_head (wd {wd})": v.metrics(v.final + a * lp) for a in ALPHAS})
    return {"model": str(model), "rows": rows}


def markdown(r: dict[str, Any]) -> str:
    return "\n".join(rows_table(f"Per-sticker weights on Int-RA's H^T (validation, {r['conversations']} conversations, "
                                f"{len(r['runs'])} seeds)", r["runs"])) + "\n"


@app.command()
def main(model: list[Path] = typer.Option(..., help="Bundle(s), one per seed."), data: Path = typer.Option(..., help="GoEmoji dataset directory."),
         out: Path = typer.Option(..., help="Directory for emoji_head.json and emoji_head.md.")) -> None:
    """Fit per-sticker weights on the bundle's H^T and measure them on validation, alone and added to the score."""
    from sdk.dataset import load_dataset

    r = {"data": str(data), "conversations": len(load_dataset(data).split("validation")), "runs": [measure_bundle(m, data) for m in model]}
    write_result(out, "emoji_head", r, markdown(r))


if __name__ == "__main__":
    app()
