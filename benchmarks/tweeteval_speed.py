"""TweetEval emoji's speed through the SDK: `rank()` at batch 1 and 32 on the 20- and 646-emoji packs.

``python -m benchmarks.tweeteval_speed --model BUNDLE --task DIR --full DIR --out DIR`` times, for
int8 and fp32 on each pack: `rank()` p50 / p99 at batch 1 over real test tweets (each call a
different tweet), contexts per second through `rank_many` at batch 32, and the wall time of
ranking the whole test split. Writes ``speed.json`` and ``speed.md``, with the CPU named.

``--student BUNDLE`` also times a second bundle (a distilled student) against ``--model`` on the
20-emoji pack: both at the precision the SDK picks, batch 1, the same tweets, the two called in
turn for three rounds (the best median of each kept), so that the machine's load hits both alike.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.ranker import Ranker
from sdk.temp_pack import temporary_ranker

from .measure import machine, timed
from .tweeteval import FULL_OPTION, MODEL_OPTION, TASK_OPTION, split_contexts

PRECISIONS = ("int8", "fp32")


def each_in_turn(ranker: Ranker, contexts: list) -> Callable[[], object]:
    """A call that ranks the next of `contexts` (round and round): each timed call a different tweet."""
    stream = itertools.cycle(contexts)
    return lambda: ranker.rank(next(stream))


def pack_speed(model: Path, data: Path, precision: str, calls: int = 300, batch: int = 32) -> dict[str, Any]:
    """Batch-1 latency, batch-32 throughput and the whole split's wall time on one pack and precision."""
    contexts = split_contexts(load_dataset(data))
    with temporary_ranker(model, data, precision=precision) as ranker:
        single = timed(each_in_turn(ranker, contexts), repeat=calls, warmup=5)
        chunk = contexts[:batch * 10]
        t0 = time.perf_counter()
        ranker.rank_many(chunk, batch_size=batch)
        per_second = len(chunk) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        ranker.score_matrix(contexts, batch_size=batch)
        whole = time.perf_counter() - t0
        return {"stickers": len(ranker.pack), "precision": ranker.bundle.precision, "batch1": single,
                "contexts_per_second_batch32": per_second, "whole_test_split_seconds": whole, "test_contexts": len(contexts)}


def head_to_head(models: dict[str, Path], data: Path, calls: int = 300, rounds: int = 3) -> dict[str, Any]:
    """`rank()` p50 at batch 1 of each bundle (the SDK's precision), called in turn over the same
    tweets for `rounds` rounds; the best median of each, and each one's precision."""
    contexts = split_contexts(load_dataset(data))
    with ExitStack() as stack:
        rankers = {name: stack.enter_context(temporary_ranker(model, data)) for name, model in models.items()}
        best = {name: float("inf") for name in rankers}
        for _ in range(rounds):
            for name, ranker in rankers.items():
                best[name] = min(best[name], timed(each_in_turn(ranker, contexts), repeat=calls, warmup=5)["p50_ms"])
        return {"p50_ms": best, "precision": {name: r.bundle.precision for name, r in rankers.items()}}


def markdown(result: dict[str, Any]) -> str:
    """One table: each pack and precision (and the student's head-to-head line)."""
    m = result["machine"]
    lines = ["# TweetEval emoji: SDK speed", "", f"Machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}.", "",
             "| pack | precision | rank() p50 ms | p99 ms | contexts/s at batch 32 | whole test split (s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['stickers']} emoji | {r['precision']} | {r['batch1']['p50_ms']:.2f} | {r['batch1']['p99_ms']:.2f} | "
                     f"{r['contexts_per_second_batch32']:.0f} | {r['whole_test_split_seconds']:.1f} ({r['test_contexts']} tweets) |")
    if "student" in result:
        h = result["student"]
        t, st = h["p50_ms"]["model"], h["p50_ms"]["student"]
        lines += ["", f"Student against the model, 20-emoji pack, batch 1, called in turn ({h['precision']['model']} / "
                  f"{h['precision']['student']}): rank() p50 {t:.2f} ms against {st:.2f} ms, {t / st:.2f}x faster."]
    return "\n".join(lines) + "\n"


def main(model: Path = MODEL_OPTION, task: Path = TASK_OPTION, full: Path | None = FULL_OPTION,
         out: Path = typer.Option(..., "--out", help="Directory for speed.json and speed.md."),
         calls: int = typer.Option(300, "--calls", help="Batch-1 calls timed per pack and precision."),
         student: Path | None = typer.Option(None, "--student", help="A second bundle (a distilled student) timed against "
                                             "--model on the 20-emoji pack, the two in turn. [default: none]")) -> None:
    """Time the SDK on TweetEval emoji's test tweets, int8 and fp32, on each pack."""
    rows = [pack_speed(model, data, precision, calls) for data in (task, full) if data is not None for precision in PRECISIONS]
    result: dict[str, Any] = {"machine": machine(), "rows": rows}
    if student is not None:
        result["student"] = head_to_head({"model": model, "student": student}, task, calls)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "speed.json", result)
    atomic.write_text(out / "speed.md", markdown(result))
    typer.echo(markdown(result))


if __name__ == "__main__":
    typer.run(main)
