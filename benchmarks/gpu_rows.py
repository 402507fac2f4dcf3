"""`python -m benchmarks.gpu_rows`: the CUDA rows of the benchmark, with parity against fp32 on the CPU.

fp16 on the GPU is timed at batch 1 and 32 (64 tokens), and its ranking of test contexts is
compared with fp32 on the CPU: top-5 agreement and the largest score difference. `benchmarks/gpu.sh`
runs it in a venv with onnxruntime-gpu; `--providers cpu` runs the same rows on the CPU (how the
test suite checks the machinery on a machine without a GPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from sdk import atomic
from sdk.cli_base import fail, new_app, run_guarded
from sdk.dataset import load_dataset
from sdk.errors import IntraError
from sdk.ranker import Ranker

from .measure import machine, timed
from .suite import context_of, with_length

app = new_app("The CUDA rows of the benchmark: fp16 on the GPU, with parity against fp32 on the CPU.")


def top5_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean overlap of the top 5 of each row of two score matrices."""
    ta, tb = np.argsort(-a, axis=1)[:, :5], np.argsort(-b, axis=1)[:, :5]
    return float(np.mean([len(set(x) & set(y)) / 5 for x, y in zip(ta, tb)]))


def gpu_rows(model: Path, pack: Path, data: Path, providers: str = "cuda", contexts: int = 200, repeat: int = 50) -> dict[str, Any]:
    """Latency of fp16 on `providers` and its parity with fp32 on the CPU."""
    fast = Ranker(model, pack, precision="fp16", providers=providers)
    reference = Ranker(model, pack, precision="fp32", providers="cpu")
    convs = load_dataset(data, splits=["test"]).split("test")[:contexts]
    texts = [[t.text for t in c.context] for c in convs]
    _, fp16 = fast.score_matrix(texts)
    _, fp32 = reference.score_matrix(texts)
    length = min(64, fast.bundle.text_settings.max_length)
    with_length(fast.bundle, length)
    ctx = context_of(fast.bundle.tokenizer, length)
    return {"machine": machine(), "provider": fast.bundle.provider, "tokens": length, "contexts": len(texts),
            "b1": timed(lambda: fast.rank(ctx), repeat),
            "b32": timed(lambda: fast.rank_many([ctx] * 32, batch_size=32), max(3, repeat // 5)),
            "top5_agreement_vs_fp32_cpu": round(top5_agreement(fp16, fp32), 4),
            "max_score_diff_vs_fp32_cpu": float(np.abs(fp16 - fp32).max()), "repeat": repeat}


def markdown(r: dict[str, Any]) -> str:
    return "\n".join([
        f"# fp16 on {r['provider']} against fp32 on the CPU", "", f"Machine: {r['machine']['cpu']}, onnxruntime "
        f"{r['machine']['onnxruntime']}, providers {', '.join(r['machine']['providers'])}.", "",
        "| rows | p50 ms (b1) | p50 ms (b32) | top-5 agreement | max score diff | contexts |", "|---|---|---|---|---|---|",
        f"| fp16, {r['tokens']} tokens | {r['b1']['p50_ms']:.2f} | {r['b32']['p50_ms']:.2f} | {r['top5_agreement_vs_fp32_cpu']:.4f} "
        f"| {r['max_score_diff_vs_fp32_cpu']:.4f} | {r['contexts']} |", ""])


@app.command()
def main_cmd(
    model: Path = typer.Option(Path("artifacts/demo/model"), help="Model bundle (with fp16 graphs)."),
    pack: Path = typer.Option(Path("artifacts/demo/pack"), help="Pack built with that bundle."),
    data: Path = typer.Option(Path("artifacts/demo/data"), help="Dataset whose test contexts are ranked for parity."),
    out: Path = typer.Option(Path("artifacts/bench-gpu"), help="Directory for gpu.json and gpu.md."),
    providers: str = typer.Option("cuda", help="cuda (the point of it) or cpu (to check the machinery without a GPU)."),
    repeat: int = typer.Option(50, min=3, help="Timed calls at batch 1."),
) -> None:
    """Time fp16 on CUDA and compare its ranking with fp32 on the CPU."""
    try:
        r = gpu_rows(model, pack, data, providers, repeat=repeat)
        atomic.write_json(out / "gpu.json", r)
        atomic.write_text(out / "gpu.md", markdown(r))
    except IntraError as e:
        fail(e)
    typer.echo(markdown(r))


if __name__ == "__main__":
    run_guarded(app, "python -m benchmarks.gpu_rows")
