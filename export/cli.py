"""`intra-export RUN_DIR --out MODEL_DIR`: the export stage as a command."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from sdk.cli_base import fail, new_app, require_extra, run_guarded
from sdk.errors import IntraError
from sdk.manifest import PRECISIONS

from .opset import DEFAULT_OPSET, OPSET_RANGE

app = new_app("Export a trained run to a model bundle: four ONNX graphs per precision, gated on parity.")


def _precisions(value: str) -> str:
    """--precision checked before any work."""
    names = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in names if p not in PRECISIONS]
    if not names or bad:
        raise typer.BadParameter(f"expected a comma-separated list of {', '.join(PRECISIONS)}, got {value!r}")
    return value


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run directory made by `intra train`."),
    out: Path = typer.Option(..., "--out", help="Bundle directory to write: free, empty or an earlier bundle (replaced atomically, only on success)."),
    precision: str = typer.Option("fp32,int8,fp16", callback=_precisions, help="Comma-separated precisions; fp32 is always included as the reference."),
    opset: int = typer.Option(DEFAULT_OPSET, min=OPSET_RANGE[0], max=OPSET_RANGE[1], help="ONNX opset."),
    data: Path | None = typer.Option(None, help="Dataset for the parity checks. [default: the run's training dataset]"),
    allow_degraded: bool = typer.Option(False, "--allow-degraded", help="Keep the bundle even when the parity gate fails (figures still in the manifest)."),
) -> None:
    """Export RUN to a bundle; fails when a graph does not match PyTorch (unless --allow-degraded)."""
    logging.basicConfig(level=logging.WARNING)
    try:
        require_extra("intra-export", "train", "torch", "onnx", "transformers")
        from .exporter import export_run
        from .report import summary

        manifest = export_run(run, out, tuple(p.strip() for p in precision.split(",") if p.strip()), opset, data, allow_degraded)
    except IntraError as e:
        fail(e)
    typer.echo(summary(manifest))
    typer.echo(f"wrote bundle {out} (fingerprint {manifest.fingerprint})")


def register(root: typer.Typer) -> None:
    """Add `export` to the `intra` app (`intra export RUN --out MODEL` = `intra-export RUN --out MODEL`)."""
    root.command("export")(export)


def main() -> None:
    """The `intra-export` console command, behind the last-resort error handler."""
    run_guarded(app, "intra-export")


if __name__ == "__main__":
    main()
