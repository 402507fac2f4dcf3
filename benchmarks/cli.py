"""`intra bench` and `intra demo`: the benchmark side's commands.

Registered into `intra` through the ``intra.commands`` entry point (:func:`register`);
`python -m benchmarks` runs `bench` alone.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sdk.cli_base import fail, new_app, require_extra, run_guarded
from sdk.errors import IntraError

app = new_app("Measure the SDK and run the demo.")


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


@app.command("demo")
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
    """Add `bench` and `demo` to the `intra` app."""
    root.command("bench")(bench_cmd)
    root.command("demo")(demo_cmd)


def main() -> None:
    """`python -m benchmarks`: `bench` alone, behind the last-resort handler."""
    single = new_app("Measure latency, throughput, memory, start-up and quality of the SDK on this machine.")
    single.command()(bench_cmd)
    run_guarded(single, "python -m benchmarks")
