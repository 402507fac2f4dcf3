"""`intra demo`: the end-to-end pipeline's command.

Registered into `intra` through the ``intra.commands`` entry point (:func:`register`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from sdk.cli_base import fail, require_extra
from sdk.errors import IntraError


def demo_cmd(
    workdir: Path = typer.Option(Path("artifacts/demo"), help="Where the demo writes its dataset, run, bundle, pack and report."),
    seed: int = typer.Option(0, help="Seed for the synthetic world and training."),
    preset: str = typer.Option("small", help="Training preset (tiny runs in seconds, for a smoke test)."),
    epochs: int | None = typer.Option(None, min=1, max=10_000, help="Training epochs. [default: the preset's]"),
) -> None:
    """The main job on the built-in SYNTHETIC world: data, train, eval, export, pack, rank, latency."""
    try:
        require_extra("`intra demo` (it trains a model)", "train", "torch", "transformers", "onnx")
        from .demo import run_demo

        run_demo(workdir, seed, preset, epochs)
    except IntraError as e:
        fail(e)


def register(root: typer.Typer) -> None:
    """Add `demo` to the `intra` app."""
    root.command("demo")(demo_cmd)
