"""`intra bench`: the benchmark suite's command.

Registered into `intra` through the ``intra.commands`` entry point (:func:`register`);
`python -m benchmarks` runs `bench` alone.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sdk.cli_base import fail, new_app, run_guarded
from sdk.errors import IntraError

app = new_app("Measure the SDK.")


@app.command("bench")
def bench_cmd(
    model: Path = typer.Option(..., "--model", help="Model bundle made by intra-export."),
    pack: Path = typer.Option(..., "--pack", help="Pack built with that bundle."),
    out: Path = typer.Option(..., "--out", help="Directory for results.json, results.md and the plots."),
    run: Path | None = typer.Option(None, "--run", help="The run the bundle came from, for the PyTorch eager rows (needs the 'train' extra)."),
    quick: bool = typer.Option(False, "--quick", help="Seconds instead of minutes: fewer lengths, repeats and pack sizes."),
) -> None:
    """Measure latency, throughput, memory, start-up and quality of the SDK on this machine."""
    from .report import markdown, write
    from .suite import run_benchmark

    try:
        results = run_benchmark(model, pack, run, quick=quick, log=lambda m: typer.echo(f"  {m}", err=True))
        write(results, out)
    except IntraError as e:
        fail(e)
    typer.echo(markdown(results))
    typer.echo(f"wrote {out}/results.json, results.md, latency.png, pack_scaling.png")


def register(root: typer.Typer) -> None:
    """Add `bench` to the `intra` app."""
    root.command("bench")(bench_cmd)


def main() -> None:
    """`python -m benchmarks`: `bench` alone, behind the last-resort handler."""
    single = new_app("Measure latency, throughput, memory, start-up and quality of the SDK on this machine.")
    single.command()(bench_cmd)
    run_guarded(single, "python -m benchmarks")
