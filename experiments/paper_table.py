"""Reproduce the paper-style table on one dataset: train every variant, evaluate all on one split.

    python -m experiments.paper_table --data DIR --out DIR [--preset small] [--split test] [--seeds 0,1,2] [--sdk]

Trains Int-RA in the three query modes (paper, soft, fused), the three ablations (without
knowledge, attributes, intention; in fused mode), the CLIP-style dual encoder and, where the
dataset has extra_intention.jsonl, Int-RA with its intention head also trained on it (and, only when
``--variants`` names it, ``-speaker-markers``: turns read without who said them), each into
OUT/runs/NAME (OUT/runs/NAME-sS for seeds other than 0; an unfinished run is resumed). Each seed
is evaluated with the random, popular and intention-only baselines and the two frozen-feature
probes (``--no-probes`` leaves them out); ``--sdk`` also exports the main run of each seed to
OUT/bundles/ and adds its row ranked through the SDK (int8), which is what apps get. OUT/report.json
and OUT/report.md hold every row as mean ± std over the seeds, each seed's own table, and a 95%
bootstrap interval on the split for the main row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

VARIANTS: dict[str, dict[str, Any]] = {
    "int-ra": dict(mode="fused"),
    "int-ra (paper)": dict(mode="paper"),
    "int-ra (soft)": dict(mode="soft"),
    "-knowledge": dict(mode="fused", use_knowledge=False),
    "-attributes": dict(mode="fused", use_attributes=False),
    "-intention": dict(mode="fused", use_intention=False),
    "dual-encoder (CLIP-style)": dict(dual_encoder=True),
    # turns read without "me:" / "them:" (on by default for chats of several speakers); only with --variants
    "-speaker-markers": dict(mode="fused", speaker_markers="off"),
    # only where the dataset has extra intention-only examples (GoEmoji's comments without emoji)
    "int-ra +extra-intention": dict(mode="fused", extra_intention=True),
}
MAIN = "int-ra"  # the report's main row: Int-RA in the preset's default mode
OPT_IN = ("-speaker-markers",)  # trained only when --variants names them

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def run_name(name: str, seed: int = 0) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").replace("--", "-")
    return base if seed == 0 else f"{base}-s{seed}"


def aggregate(reports: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{row: {metric: {"mean", "std"}}} over per-seed reports (rows present in every seed)."""
    rows = [r for r in reports[0]["models"] if all(r in rep["models"] for rep in reports)]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        metrics = reports[0]["models"][row]
        out[row] = {k: {"mean": float(np.mean([rep["models"][row][k] for rep in reports])),
                        "std": float(np.std([rep["models"][row][k] for rep in reports], ddof=1)) if len(reports) > 1 else 0.0}
                    for k in metrics}
    return out


def default_row(rows: list[str]) -> str:
    """The row apps get: the main run ranked through the SDK when the table has it, else the main run."""
    return next((r for r in rows if r.startswith(f"{MAIN} (sdk ")), MAIN)


def paired_differences(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Each row against the default, conversation by conversation (values averaged over the seeds
    first), with a paired 95% bootstrap interval: {"default", "rows": {row: {metric: ...}}}."""
    from training.evaluate import PAIRED_KEYS
    from training.metrics import paired_difference

    rows = [r for r in reports[0].get("per_query", {}) if all(r in rep.get("per_query", {}) for rep in reports)]
    if not rows:
        return {"default": None, "rows": {}}
    best = default_row(rows)

    def over_seeds(row: str, k: str) -> np.ndarray:
        return np.mean([np.asarray(rep["per_query"][row][k]) for rep in reports], axis=0)

    return {"default": best, "rows": {row: {k: paired_difference(over_seeds(best, k), over_seeds(row, k)) for k in PAIRED_KEYS}
                                      for row in rows if row != best}}


def paired_markdown(paired: dict[str, Any], seeds: int) -> list[str]:
    if not paired.get("rows"):
        return []
    keys = list(next(iter(paired["rows"].values())))
    lines = [f"Differences of the default (`{paired['default']}`) from each row, in points: per conversation, averaged over "
             f"the {seeds} seed(s), then the mean and its paired 95% bootstrap interval (conversations resampled 2000 times). "
             "**Bold**: the interval leaves out zero, so the difference is beyond the test split's noise.", "",
             "| against | " + " | ".join(f"Δ{k}" for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row, diffs in paired["rows"].items():
        cells = []
        for k in keys:
            d = diffs[k]
            text = f"{100 * d['mean']:+.1f} [{100 * d['interval'][0]:+.1f}, {100 * d['interval'][1]:+.1f}]"
            cells.append(f"**{text}**" if d["beyond_noise"] else text)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines + [""]


def aggregate_markdown(summary: dict[str, Any]) -> str:
    from training.evaluate import METRIC_KEYS

    seeds = summary["seeds"]
    lines = [f"# {summary['dataset']} / {summary['split']}: mean ± std over seeds {', '.join(map(str, seeds))}", "",
             f"{summary['n']} conversations, {summary['stickers']} candidate stickers; metrics in percent.", "",
             "| model | " + " | ".join(METRIC_KEYS) + " |", "|---" * (len(METRIC_KEYS) + 1) + "|"]
    for row, metrics in summary["aggregate"].items():
        cells = [f"{100 * metrics[k]['mean']:.2f} ± {100 * metrics[k]['std']:.2f}" for k in METRIC_KEYS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", f"95% bootstrap intervals of the main row ({MAIN}) on the split, per seed (queries resampled 2000 times):", "",
              "| seed | " + " | ".join(("mAP", "R@10", "MRR")) + " |", "|---|---|---|---|"]
    for seed, interval in zip(seeds, summary["main_interval95"]):
        lines.append(f"| {seed} | " + " | ".join(f"{100 * interval[k][0]:.1f} – {100 * interval[k][1]:.1f}"
                                                 for k in ("mAP", "R@10", "MRR")) + " |")
    lines += ["", *paired_markdown(summary.get("paired", {}), len(seeds)), f"Command: `{summary['command']}`", ""]
    return "\n".join(lines)


def train_variants(chosen: dict[str, dict[str, Any]], data: Path, out: Path, preset: str, epochs: int | None, seed: int,
                   extra_intention: bool, only: list[str]) -> dict[str, Path]:
    from training.config import preset as make_preset
    from training.trainer import train

    runs = {}
    for name, flags in chosen.items():
        run = out / "runs" / run_name(name, seed)
        runs[name] = run
        if only and name not in only:
            continue
        typer.secho(f"== training {name} (seed {seed})", bold=True)
        train(make_preset(preset, epochs=epochs, seed=seed, **{"extra_intention": extra_intention or None, **flags}), data, run)
    return runs


def export_main(run: Path, out: Path) -> Path:
    """The main run's bundle (fp32 reference and int8), exported once; a failed parity gate is
    kept (and said) so that the table shows what the int8 graphs really rank."""
    from export.exporter import export_run
    from sdk.bundle import is_current

    if not is_current(out):
        typer.secho(f"== exporting {run} to {out}", bold=True)
        manifest = export_run(run, out, ("fp32", "int8"), allow_degraded=True, progress=False)
        if manifest.gate is not None and not manifest.gate.passed:
            typer.secho(f"   parity gate failed: {list(manifest.gate.failures)}", fg=typer.colors.YELLOW)
    return out


@app.command()
def main(
    data: Path = typer.Option(..., help="Dataset directory."),
    out: Path = typer.Option(..., help="Output directory (runs/, bundles/, cache/ and the report)."),
    preset: str = typer.Option("small", help="Training preset for every variant."),
    split: str = typer.Option("test", help="Split to evaluate."),
    epochs: int | None = typer.Option(None, help="Epochs for every variant. [default: the preset's]"),
    extra_intention: bool = typer.Option(False, help="Train intention heads on extra_intention.jsonl too."),
    only: list[str] = typer.Option([], help="Train only these variants (names as in the table); others must exist."),
    variants: list[str] = typer.Option([], help="Put only these variants in the table (always with int-ra). [default: all but -speaker-markers]"),
    seeds: str = typer.Option("0", help="Comma-separated seeds; every row is reported as mean ± std over them."),
    probes: bool = typer.Option(True, "--probes/--no-probes", help="Add the probe-emoji and probe-intention baselines."),
    sdk: bool = typer.Option(False, "--sdk", help="Export each seed's main run and add its row ranked through the SDK (int8)."),
) -> None:
    """Train all variants and write the comparison table."""
    from sdk import atomic
    from sdk.dataset import load_dataset
    from training.evaluate import command_line, evaluate, markdown, write_report

    unknown = [v for v in [*only, *variants] if v not in VARIANTS]
    if unknown:
        raise typer.BadParameter(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--seeds {seeds!r}: expected comma-separated integers") from None
    if not seed_list:
        raise typer.BadParameter("--seeds: give at least one seed")
    chosen = {k: v for k, v in VARIANTS.items() if k in variants or k == MAIN or (not variants and k not in OPT_IN)}
    ds = load_dataset(data)
    if not ds.splits.get("extra_intention"):
        chosen = {k: v for k, v in chosen.items() if not v.get("extra_intention")}
    reports = []
    for seed in seed_list:
        runs = train_variants(chosen, data, out, preset, epochs, seed, extra_intention, only)
        bundle = export_main(runs[MAIN], out / "bundles" / run_name(MAIN, seed)) if sdk else None
        report = evaluate(runs[MAIN], data, split, {k: v for k, v in runs.items() if k != MAIN}, seed=seed, probes=probes,
                          cache_dir=out / "cache", bundle=bundle, precision="int8" if sdk else None)
        report["preset"], report["seed"] = preset, seed
        write_report(report, out / f"seed-{seed}")
        reports.append(report)
    summary = {"dataset": ds.info.name, "split": split, "n": reports[0]["n"], "stickers": reports[0]["stickers"],
               "seeds": seed_list, "preset": preset, "aggregate": aggregate(reports),
               "main_interval95": [r["main_interval95"] for r in reports], "paired": paired_differences(reports), "per_seed": [f"seed-{s}/report.json" for s in seed_list],
               "command": command_line(__import__("sys").argv)}
    atomic.write_json(out / "report.json", summary)
    atomic.write_text(out / "report.md", aggregate_markdown(summary) + "\n" + markdown(reports[0]))
    typer.echo(aggregate_markdown(summary))


if __name__ == "__main__":
    app()
