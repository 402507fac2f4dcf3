"""TweetEval emoji's speed through the SDK: `rank()` at batch 1 and 32 on the 20- and 646-emoji packs.

``python -m benchmarks.tweeteval_speed --model BUNDLE --task DIR --full DIR --out DIR`` times, for
int8 and fp32 on each pack: `rank()` p50 / p99 at batch 1 over real test tweets (each call a
different tweet), contexts per second through `rank_many` at batch 32, and the wall time of
ranking the whole test split. Writes ``speed.json`` and ``speed.md``, with the CPU named.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import typer

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.temp_pack import temporary_ranker

from .measure import machine, timed
from .tweeteval import FULL_OPTION, MODEL_OPTION, TASK_OPTION, split_contexts

PRECISIONS = ("int8", "fp32")


def pack_speed(model: Path, data: Path, precision: str, calls: int = 300, batch: int = 32) -> dict[str, Any]:
    """Batch-1 latency, batch-32 throughput and the whole split's wall time on one pack and precision."""
    contexts = split_contexts(load_dataset(data))
    with temporary_ranker(model, data, precision=precision) as ranker:
        stream = itertools.cycle(contexts)
        single = timed(lambda: ranker.rank(next(stream)), repeat=calls, warmup=5)
        chunk = contexts[:batch * 10]
        t0 = time.perf_counter()
        ranker.rank_many(chunk, batch_size=batch)
        per_second = len(chunk) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        ranker.score_matrix(contexts, batch_size=batch)
        whole = time.perf_counter() - t0
        return {"stickers": len(ranker.pack), "precision": ranker.bundle.precision, "batch1": single,
                "contexts_per_second_batch32": per_second, "whole_test_split_seconds": whole, "test_contexts": len(contexts)}


def markdown(result: dict[str, Any]) -> str:
    """One table: each pack and precision."""
    m = result["machine"]
    lines = ["# TweetEval emoji: SDK speed", "", f"Machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}.", "",
             "| pack | precision | rank() p50 ms | p99 ms | contexts/s at batch 32 | whole test split (s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['stickers']} emoji | {r['precision']} | {r['batch1']['p50_ms']:.2f} | {r['batch1']['p99_ms']:.2f} | "
                     f"{r['contexts_per_second_batch32']:.0f} | {r['whole_test_split_seconds']:.1f} ({r['test_contexts']} tweets) |")
    return "\n".join(lines) + "\n"


def main(model: Path = MODEL_OPTION, task: Path = TASK_OPTION, full: Path | None = FULL_OPTION,
         out: Path = typer.Option(..., "--out", help="Directory for speed.json and speed.md."),
         calls: int = typer.Option(300, "--calls", help="Batch-1 calls timed per pack and precision.")) -> None:
    """Time the SDK on TweetEval emoji's test tweets, int8 and fp32, on each pack."""
    rows = [pack_speed(model, data, precision, calls) for data in (task, full) if data is not None for precision in PRECISIONS]
    result = {"machine": machine(), "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "speed.json", result)
    atomic.write_text(out / "speed.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
