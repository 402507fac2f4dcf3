"""`python -m benchmarks.gpu_rows`: the CUDA rows of the benchmark, with parity against fp32 on the CPU.

fp16 on the GPU is timed at batch 1 and 32 (64 tokens), next to int8 on the same machine's CPU
(the SDK's CPU default) in the same run, and its ranking of test contexts is compared with fp32
on the CPU: top-5 agreement and the largest score difference.

The fp32 reference can be computed elsewhere (``--save-reference FILE`` on any CPU, then
``--reference FILE`` on the GPU machine), so that a GPU machine that takes files in small loads
needs only the fp16 (and int8) graphs. `benchmarks/gpu.sh` runs it in a venv with
onnxruntime-gpu; `--providers cpu` runs the same rows on the CPU (how the test suite checks the
machinery on a machine without a GPU).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from functools import partial
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

ENCODER_BATCHES = (1, 8, 32, 128)
app = new_app("The CUDA rows of the benchmark: fp16 on the GPU, with parity against fp32 on the CPU.")


class GpuReferenceError(IntraError, ValueError):
    """A saved fp32 reference that does not match the contexts being compared."""


def top5_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean overlap of the top 5 of each row of two score matrices."""
    ta, tb = np.argsort(-a, axis=1)[:, :5], np.argsort(-b, axis=1)[:, :5]
    return float(np.mean([len(set(x) & set(y)) / 5 for x, y in zip(ta, tb)]))


def gpu_name() -> str | None:
    """The GPU nvidia-smi reports (name, driver, memory), or None where there is none."""
    if shutil.which("nvidia-smi") is None:
        return None
    proc = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else None


def parity_contexts(data: Path, contexts: int) -> list[list[str]]:
    convs = load_dataset(data, splits=["test"]).split("test")[:contexts]
    return [[t.text for t in c.context] for c in convs]


def reference_scores(model: Path, pack: Path, texts: list[list[str]]) -> np.ndarray:
    """(Q, S) final scores of fp32 on the CPU: what the fp16 rows are compared with."""
    return Ranker(model, pack, precision="fp32", providers="cpu").score_matrix(texts)[1]


def save_reference(path: Path, scores: np.ndarray) -> None:
    atomic.write_npy(path, scores.astype(np.float32))


def load_reference(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        scores = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GpuReferenceError(f"{path}: not a saved reference ({e})") from e
    if scores.shape != shape:
        raise GpuReferenceError(f"{path}: reference has shape {scores.shape}, these contexts and pack need {shape}")
    return scores


def latency(ranker: Ranker, ctx: list[str], repeat: int) -> dict[str, Any]:
    return {"b1": timed(lambda: ranker.rank(ctx), repeat),
            "b32": timed(lambda: ranker.rank_many([ctx] * 32, batch_size=32), max(3, repeat // 5))}


def encoder_by_batch(ranker: Ranker, ctx: list[str], repeat: int, batches: tuple[int, ...] = ENCODER_BATCHES) -> dict[str, float]:
    """p50 ms of the text encoder's session alone at each batch size: a time that stays flat as the
    batch grows is the per-call overhead (kernel launches, copies), not arithmetic."""
    out = {}
    for b in batches:
        ids, mask = ranker.bundle.tokenizer.encode_contexts([ctx] * b)
        out[str(b)] = timed(partial(ranker.bundle.pooled, ids, mask), max(3, repeat // 2))["p50_ms"]
    return out


def gpu_rows(model: Path, pack: Path, data: Path, providers: str = "cuda", contexts: int = 200, repeat: int = 50,
             reference: Path | None = None) -> dict[str, Any]:
    """Latency of fp16 on `providers` (and of int8 on this machine's CPU) and fp16's parity with fp32 on the CPU."""
    t0 = time.perf_counter()
    fast = Ranker(model, pack, precision="fp16", providers=providers)
    texts = parity_contexts(data, contexts)
    _, fp16 = fast.score_matrix(texts)  # the first call also builds the sessions
    first_s = time.perf_counter() - t0
    fp32 = (load_reference(reference, fp16.shape) if reference is not None else reference_scores(model, pack, texts))
    length = min(64, fast.bundle.text_settings.max_length)
    with_length(fast.bundle, length)
    ctx = context_of(fast.bundle.tokenizer, length)
    r = {"machine": machine(), "gpu": gpu_name(), "provider": fast.bundle.provider, "tokens": length, "contexts": len(texts),
         "load_and_first_batch_s": round(first_s, 2), **latency(fast, ctx, repeat),
         "encoder_ms_by_batch": encoder_by_batch(fast, ctx, repeat),
         "top5_agreement_vs_fp32_cpu": round(top5_agreement(fp16, fp32), 4),
         "max_score_diff_vs_fp32_cpu": float(np.abs(fp16 - fp32).max()), "repeat": repeat,
         "reference": str(reference) if reference is not None else "computed here"}
    if "int8" in fast.bundle.manifest.available():
        cpu = Ranker(model, pack, precision="int8", providers="cpu")
        with_length(cpu.bundle, length)
        r["cpu_int8"] = latency(cpu, ctx, repeat)
    return r


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# fp16 on {r['provider']} against fp32 on the CPU", "",
             f"Machine: {r['gpu'] or 'no GPU'}; CPU {r['machine']['cpu']}, {r['machine']['cores']} cores; onnxruntime "
             f"{r['machine']['onnxruntime']}, providers {', '.join(r['machine']['providers'])}. Reference: {r['reference']}.", "",
             "| rows | p50 ms (b1) | p50 ms (b32) | top-5 agreement | max score diff | contexts |", "|---|---|---|---|---|---|",
             f"| fp16 on {r['provider']}, {r['tokens']} tokens | {r['b1']['p50_ms']:.2f} | {r['b32']['p50_ms']:.2f} "
             f"| {r['top5_agreement_vs_fp32_cpu']:.4f} | {r['max_score_diff_vs_fp32_cpu']:.4f} | {r['contexts']} |"]
    if "cpu_int8" in r:
        c = r["cpu_int8"]
        lines.append(f"| int8 on this machine's CPU, {r['tokens']} tokens | {c['b1']['p50_ms']:.2f} | {c['b32']['p50_ms']:.2f} | | | |")
        lines += ["", f"fp16 on {r['provider']} against int8 on the CPU, same run: {c['b1']['p50_ms'] / r['b1']['p50_ms']:.2f}x at "
                  f"batch 1, {c['b32']['p50_ms'] / r['b32']['p50_ms']:.2f}x at batch 32."]
    enc = r["encoder_ms_by_batch"]
    lines += ["", f"Text encoder session alone on {r['provider']} (p50 ms, {r['tokens']} tokens): "
              + ", ".join(f"batch {b}: {ms:.2f} ({ms / int(b):.3f} per context)" for b, ms in enc.items()) + ".",
              "", f"Loading the bundle and ranking the first {r['contexts']} contexts: {r['load_and_first_batch_s']:.2f} s.", ""]
    return "\n".join(lines)


@app.command()
def main_cmd(
    model: Path = typer.Option(Path("artifacts/demo/model"), help="Model bundle (with fp16 graphs)."),
    pack: Path = typer.Option(Path("artifacts/demo/pack"), help="Pack built with that bundle."),
    data: Path = typer.Option(Path("artifacts/demo/data"), help="Dataset whose test contexts are ranked for parity."),
    out: Path = typer.Option(Path("artifacts/bench-gpu"), help="Directory for gpu.json and gpu.md."),
    providers: str = typer.Option("cuda", help="cuda (the point of it) or cpu (to check the machinery without a GPU)."),
    repeat: int = typer.Option(50, min=3, help="Timed calls at batch 1."),
    contexts: int = typer.Option(200, min=1, help="Test contexts ranked for parity."),
    reference: Path = typer.Option(None, help="fp32 CPU scores saved by --save-reference (instead of computing them here)."),
    save_reference_to: Path = typer.Option(None, "--save-reference", help="Only compute the fp32 CPU reference, write it (.npy) and stop."),
) -> None:
    """Time fp16 on CUDA and compare its ranking with fp32 on the CPU."""
    try:
        if save_reference_to is not None:
            save_reference(save_reference_to, reference_scores(model, pack, parity_contexts(data, contexts)))
            typer.echo(f"wrote {save_reference_to}")
            return
        r = gpu_rows(model, pack, data, providers, contexts=contexts, repeat=repeat, reference=reference)
        atomic.write_json(out / "gpu.json", r)
        atomic.write_text(out / "gpu.md", markdown(r))
    except IntraError as e:
        fail(e)
    typer.echo(markdown(r))


if __name__ == "__main__":
    run_guarded(app, "python -m benchmarks.gpu_rows")
