"""`intra-export RUN_DIR --out MODEL_DIR`: the export stage as a command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Export a trained run to a model bundle: four ONNX graphs per precision, gated on parity.")


@app.command()
def main(
    run: Path = typer.Argument(..., help="Run directory made by `intra train`."),
    out: Path = typer.Option(..., "--out", help="Bundle directory to write (replaced atomically, only on success)."),
    precision: str = typer.Option("fp32,int8,fp16", help="Comma-separated precisions; fp32 is always included as the reference."),
    opset: int = typer.Option(17, help="ONNX opset."),
    data: Optional[Path] = typer.Option(None, help="Dataset for the parity checks. [default: the run's training dataset]"),
    allow_degraded: bool = typer.Option(False, "--allow-degraded", help="Keep the bundle even when the parity gate fails (figures still in the manifest)."),
) -> None:
    """Export RUN to a bundle; fails when a graph does not match PyTorch (unless --allow-degraded)."""
    from sdk.cli import require_extra
    from sdk.errors import IntraError

    logging.basicConfig(level=logging.WARNING)
    try:
        require_extra("intra-export", "train", "torch", "onnx", "transformers")
        from .exporter import export_run
        from .report import summary

        manifest = export_run(run, out, tuple(p.strip() for p in precision.split(",") if p.strip()), opset, data, allow_degraded)
    except (IntraError, ValueError) as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    typer.echo(summary(manifest))
    typer.echo(f"wrote bundle {out} (fingerprint {manifest['fingerprint']})")


if __name__ == "__main__":
    app()
