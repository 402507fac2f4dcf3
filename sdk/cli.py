"""The `intra` command line: one typer app with a subcommand per job.

Runtime and data subcommands need only the base install. Training subcommands import torch
lazily and, when it is missing, say which extra to install.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .errors import IntraError, MissingExtraError

app = typer.Typer(
    help="intra: pick the right sticker to reply with (Int-RA), trained in PyTorch, run on onnxruntime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Build dataset directories: the built-in synthetic world or the real GoEmoji data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def require_extra(what: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError when any of `modules` cannot be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(what, extra, module)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@data_app.command("synthetic")
def data_synthetic(
    out: Path = typer.Option(..., "--out", help="Dataset directory to write (replaced atomically)."),
    seed: int = typer.Option(0, help="Random seed; the same seed draws the same world."),
    stickers: int = typer.Option(140, help="Number of stickers (at least 28, spread over the 28 intentions)."),
    conversations: int = typer.Option(3000, help="Number of conversations over train/validation/test."),
) -> None:
    """Draw the built-in SYNTHETIC sticker world (stickers + bilingual conversations)."""
    from training.data.synthetic import SyntheticConfig, generate

    try:
        counts = generate(out, SyntheticConfig(seed=seed, stickers=stickers, conversations=conversations), progress=True)
    except (IntraError, ValueError) as e:
        _fail(e)
    typer.echo(f"wrote SYNTHETIC dataset to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("goemoji")
def data_goemoji(
    source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (with goemotions/ and emoji/)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write (replaced atomically)."),
    seed: int = typer.Option(0, help="Seed of the validation split carved out of train."),
    validation_fraction: float = typer.Option(0.15, help="Fraction of train.tsv's emoji comments kept for validation."),
) -> None:
    """Build the real GoEmoji dataset: GoEmotions comments with an emoji, the emoji as gold sticker."""
    from training.data.goemoji import RULES, build

    try:
        counts = build(source, out, seed=seed, validation_fraction=validation_fraction)
    except IntraError as e:
        _fail(e)
    typer.echo(f"wrote GoEmoji dataset to {out}")
    for key, value in counts.items():
        typer.echo(f"  {key:28s} {value}")
    for key, rule in RULES.items():
        typer.echo(f"  rule {key}: {rule}")


@app.command("info")
def info(path: Path = typer.Argument(..., help="A dataset directory.")) -> None:
    """Validate a dataset directory and print its counts."""
    from .dataset import load_dataset

    try:
        ds = load_dataset(path)
    except IntraError as e:
        _fail(e)
    out = {"name": ds.info.get("name"), "synthetic": ds.info.get("synthetic"), "stickers": len(ds.stickers),
           "splits": {k: len(v) for k, v in ds.splits.items()}}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@app.command("demo")
def demo(
    workdir: Path = typer.Option(Path("artifacts/demo"), help="Where the demo writes its dataset, run and outputs."),
    seed: int = typer.Option(0, help="Seed for the synthetic world and training."),
) -> None:
    """Run the main job on the built-in synthetic world, stage by stage, and print what each did."""
    from training.data.synthetic import SyntheticConfig, generate

    t0 = time.perf_counter()
    data_dir = workdir / "data"
    typer.secho("[1] synthetic world (SYNTHETIC data)", bold=True)
    counts = generate(data_dir, SyntheticConfig(seed=seed), progress=True)
    typer.echo(f"    {data_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    typer.secho(f"done in {time.perf_counter() - t0:.1f}s", bold=True)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
