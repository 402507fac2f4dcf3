"""Measure training and scoring levers on the validation split (never the test split).

    python -m experiments.levers --data DIR --out DIR [--preset small] [--seed 0] [--only SLUG ...]

Each lever is the preset with a few fields changed; it is trained into OUT/runs/SLUG (a finished
run is reused), its weights for the usage prior and label term are chosen on validation as in
every run, and OUT/levers.{json,md} list, per lever (rows of levers not measured this time are kept
from the last table of the same preset and seed), the validation metrics of the cosine alone
and of the final score (what the SDK ranks by), the chosen weights and the training time, with
the two frozen-feature probes on the same split for reference. The default is chosen from this
table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

# slug -> (what it is, fields changed from the preset)
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "base": ("paper hinge loss, 16 sampled negatives, best checkpoint by validation mAP of the cosine (the old default)",
             {"select_on": "mAP"}),
    "final": ("best checkpoint by the final score's objective (the default now)", {"select_on": "final"}),
    "infonce-all": ("InfoNCE over the whole catalog instead of hinge, best by mAP",
                    {"retrieval_loss": "infonce", "sampled_negatives": -1, "select_on": "mAP"}),
    "adjusted-all-final": ("InfoNCE over the whole catalog with the log usage prior added to the logits, best by final",
                           {"retrieval_loss": "infonce", "sampled_negatives": -1, "prior_adjusted": True, "select_on": "final"}),
    "effnet-final": ("EfficientNet-Lite0 ImageNet regions (frozen) instead of the ViT from scratch, best by final",
                     {"vision_model": "efficientnet-lite0", "select_on": "final"}),
    "image-off-final": ("descriptions only: H^R is the mean of the projected descriptions, no image, best by final",
                        {"use_image": False, "select_on": "final"}),
    "hard8-final": ("8 hard negatives per batch from the gold stickers' labels, best by final",
                    {"hard_negatives": 8, "select_on": "final"}),
    "dim128-final": ("shared dimension 128 instead of 64, best by final", {"dim": 128, "select_on": "final"}),
    "paper-final": ("paper query mode, best by final", {"mode": "paper", "select_on": "final"}),
    "nointent-final": ("no intention head (query = projected context), best by final",
                       {"use_intention": False, "select_on": "final"}),
    "frozen-final": ("text encoder never tuned (pretrained MiniLM features cached from the start), best by final",
                     {"text_epochs": 0, "select_on": "final"}),
    "text-43k-final": ("intention stage first: top 4 MiniLM layers + head trained 1 epoch on all 43k comments, best by final",
                       {"intention_pretrain_epochs": 1, "select_on": "final"}),
    "extra-all-256-final": ("head also trained on all extra intention comments (cached features, 256 per batch), best by final",
                            {"extra_intention": True, "extra_intention_max": 50000, "extra_intention_cached_per_batch": 256,
                             "select_on": "final"}),
}
KEYS = ("MRR", "R@10", "mAP")

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def lever_row(run: Path) -> dict[str, Any]:
    """Validation figures of a finished run: cosine only, final score, weights, seconds."""
    scoring = json.loads((run / "scoring.json").read_text())
    grid = scoring["grid"]
    cosine = next(g for g in grid if g["prior_weight"] == 0 and g["label_weight"] == 0)
    final = max(grid, key=lambda g: g["objective"])
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {"cosine": {k: cosine[k] for k in KEYS}, "final": {k: final[k] for k in KEYS},
            "weights": {"prior": final["prior_weight"], "label": final["label_weight"]},
            "objective": final["objective"], "train_seconds": round(sum(e["seconds"] for e in log))}


def markdown(rows: dict[str, dict[str, Any]], probes: dict[str, dict[str, float]], data: str) -> str:
    lines = [f"# Levers on {data} / validation (metrics in percent; never measured on test)", "",
             "| lever | cosine MRR | cosine R@10 | cosine mAP | final MRR | final R@10 | final mAP | objective | w_prior | w_label | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for slug, r in rows.items():
        cells = [f"{100 * r['cosine'][k]:.1f}" for k in KEYS] + [f"{100 * r['final'][k]:.1f}" for k in KEYS]
        lines.append(f"| {slug}: {LEVERS[slug][0]} | " + " | ".join(cells)
                     + f" | {100 * r['objective']:.1f} | {r['weights']['prior']} | {r['weights']['label']} | {r['train_seconds']} |")
    for name, m in probes.items():
        lines.append(f"| {name} (baseline) | | | | {100 * m['MRR']:.1f} | {100 * m['R@10']:.1f} | {100 * m['mAP']:.1f} | "
                     f"{100 * sum(m[k] for k in KEYS) / 3:.1f} | | | |")
    lines += ["", "objective = mean of MRR, R@10 and mAP of the final score (cosine + w_prior log prior + w_label log P(label)),"
              " the quantity the weights and (with select_on=final) the checkpoint are chosen for.", ""]
    return "\n".join(lines)


@app.command()
def main(
    data: Path = typer.Option(..., help="Dataset directory."),
    out: Path = typer.Option(..., help="Output directory (runs/ and levers.{json,md})."),
    preset: str = typer.Option("small", help="Preset every lever starts from."),
    seed: int = typer.Option(0, help="Seed of every run."),
    only: list[str] = typer.Option([], help="Measure only these levers (slugs). [default: all]"),
    probes: bool = typer.Option(True, "--probes/--no-probes", help="Add the two probes on the validation split."),
) -> None:
    """Train each lever and tabulate its validation figures."""
    import numpy as np

    from sdk import atomic
    from sdk.dataset import load_dataset
    from training.config import preset as make_preset
    from training.metrics import retrieval_metrics
    from training.trainer import train

    unknown = [s for s in only if s not in LEVERS]
    if unknown:
        raise typer.BadParameter(f"unknown lever(s) {unknown}; choose from {list(LEVERS)}")
    rows = {}
    for slug, (_, fields) in LEVERS.items():
        if only and slug not in only:
            continue
        typer.secho(f"== {slug}", bold=True)
        train(make_preset(preset, seed=seed, **fields), data, out / "runs" / slug)
        rows[slug] = lever_row(out / "runs" / slug)
    probe_rows = {}
    if probes:
        from training.probes import probe_scores

        ds = load_dataset(data)
        convs = ds.split("validation")
        index = ds.sticker_index()
        gold = np.array([index[c.gold] for c in convs])
        labels, _ = ds.sticker_labels()
        for name, scores in probe_scores(ds, convs, out / "cache", seed=seed).items():
            probe_rows[name] = retrieval_metrics(scores, gold, labels)
    previous = json.loads((out / "levers.json").read_text()) if (out / "levers.json").is_file() else {}
    if previous.get("preset") == preset and previous.get("seed") == seed:
        # rows not measured this time (--only, --no-probes) are kept from the last table
        rows = {**{k: v for k, v in previous.get("levers", {}).items() if k in LEVERS}, **rows}
        rows = {k: rows[k] for k in LEVERS if k in rows}
        probe_rows = probe_rows or previous.get("probes", {})
    atomic.write_json(out / "levers.json", {"levers": rows, "probes": probe_rows, "preset": preset, "seed": seed})
    text = markdown(rows, probe_rows, str(data))
    atomic.write_text(out / "levers.md", text)
    typer.echo(text)


if __name__ == "__main__":
    app()
