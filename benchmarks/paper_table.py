"""Reproduce the paper-style table on one dataset: train every variant, evaluate all on one split.

    python -m benchmarks.paper_table --data DIR --out DIR [--preset small] [--split test]

Trains Int-RA in the three query modes (paper, soft, fused), the three ablations (without
knowledge, attributes, intention; in fused mode), the CLIP-style dual encoder and, where the
dataset has extra_intention.jsonl, Int-RA with its intention head also trained on it, each into
OUT/runs/NAME (an unfinished run is resumed), then writes OUT/report.{json,md} and
OUT/pr_curve.png with the random, popular and intention-only baselines beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

VARIANTS: dict[str, dict[str, Any]] = {
    "int-ra": dict(mode="fused"),
    "int-ra (paper)": dict(mode="paper"),
    "int-ra (soft)": dict(mode="soft"),
    "-knowledge": dict(mode="fused", use_knowledge=False),
    "-attributes": dict(mode="fused", use_attributes=False),
    "-intention": dict(mode="fused", use_intention=False),
    "dual-encoder (CLIP-style)": dict(dual_encoder=True),
    # only where the dataset has extra intention-only examples (GoEmoji's comments without emoji)
    "int-ra +extra-intention": dict(mode="fused", extra_intention=True),
}
MAIN = "int-ra"  # the report's main row: Int-RA in fused mode

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def run_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").replace("--", "-")


@app.command()
def main(
    data: Path = typer.Option(..., help="Dataset directory."),
    out: Path = typer.Option(..., help="Output directory (runs/ and the report)."),
    preset: str = typer.Option("small", help="Training preset for every variant."),
    split: str = typer.Option("test", help="Split to evaluate."),
    epochs: Optional[int] = typer.Option(None, help="Epochs for every variant. [default: the preset's]"),
    extra_intention: bool = typer.Option(False, help="Train intention heads on extra_intention.jsonl too."),
    only: list[str] = typer.Option([], help="Train only these variants (names as in the table); others must exist."),
    variants: list[str] = typer.Option([], help="Put only these variants in the table (always with int-ra). [default: all]"),
    seed: int = typer.Option(0, help="Seed of every run."),
) -> None:
    """Train all variants and write the comparison table."""
    from sdk.dataset import load_dataset
    from training.config import preset as make_preset
    from training.evaluate import evaluate, markdown, write_report
    from training.trainer import train

    unknown = [v for v in [*only, *variants] if v not in VARIANTS]
    if unknown:
        raise typer.BadParameter(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    chosen = {k: v for k, v in VARIANTS.items() if not variants or k in variants or k == MAIN}
    if not load_dataset(data).splits.get("extra_intention"):
        chosen = {k: v for k, v in chosen.items() if not v.get("extra_intention")}
    runs = {}
    for name, flags in chosen.items():
        run = out / "runs" / run_name(name)
        runs[name] = run
        if only and name not in only:
            continue
        typer.secho(f"== training {name}", bold=True)
        train(make_preset(preset, epochs=epochs, seed=seed, **{"extra_intention": extra_intention or None, **flags}), data, run)
    report = evaluate(runs[MAIN], data, split, {k: v for k, v in runs.items() if k != MAIN}, seed=seed)
    report["preset"] = preset
    write_report(report, out)
    typer.echo(markdown(report))


if __name__ == "__main__":
    app()
