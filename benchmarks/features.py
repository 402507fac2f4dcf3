"""What each optional feature of `rank()` costs, as a fraction of a plain `rank()`.

    python -m benchmarks.features --model BUNDLE --data DIR --out DIR [--repeat 200]

One Ranker over a pack built from DIR; every variant ranks the same test conversation, round-robin
(one call of each variant per round, so a busy moment hits them all alike), and the median per
variant is compared with the plain call's median measured in the same rounds:

- history: 100 recorded uses (`Ranker.record`), the default weight;
- explain: `explain=True` (each match's `why`);
- sticker turn: one earlier turn is a sticker of the pack instead of text (as long as its label);
- diverse: `diverse=True`;
- suggest: for a bundle with a suggest head, rank() as shipped against the same bundle with the
  head's output not requested (the plain row is then the latter).

Writes DIR/features.json and DIR/features.md with the CPU named.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from .output import write_result

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def variants(model: Path, pack: Path, context: list[dict[str, str]], sticker: str) -> tuple[dict[str, Any], Any]:
    """(name -> a zero-argument call of rank() with that feature on, the plain Ranker)."""
    from sdk.ranker import Ranker

    plain = Ranker(model, pack, providers="cpu")
    hist = Ranker(plain.bundle, plain.pack)
    rng = random.Random(0)
    for _ in range(100):
        hist.record(rng.choice(plain.pack.ids))
    label = plain.sticker_text(sticker) or ""
    as_text = context[:-1] + [{"speaker": "B", "text": label}] + context[-1:]
    with_sticker = context[:-1] + [{"speaker": "B", "sticker": sticker}] + context[-1:]
    calls = {
        "plain": lambda: plain.rank(as_text),
        "history (100 uses)": lambda: hist.rank(as_text),
        "explain (why)": lambda: plain.rank(as_text, explain=True),
        "sticker turn": lambda: plain.rank(with_sticker),
        "diverse": lambda: plain.rank(as_text, diverse=True),
        "all of them": lambda: hist.rank(with_sticker, explain=True, diverse=True),
    }
    settings = plain.bundle.suggest
    if settings is not None:
        # one bundle and one set of sessions for every row (two would spin two thread pools): the
        # other rows leave the suggest output unread, the suggest row reads it as shipped
        def unread(fn: Any) -> Any:
            def call() -> Any:
                plain.bundle.suggest = None
                try:
                    return fn()
                finally:
                    plain.bundle.suggest = settings
            return call

        calls = {k: unread(fn) for k, fn in calls.items()}
        calls["suggest (confidence)"] = lambda: plain.rank(as_text)
    return calls, plain


def time_round_robin(calls: dict[str, Any], repeat: int) -> dict[str, float]:
    """Median ms per call, the variants interleaved call by call."""
    for fn in calls.values():  # sessions, caches, first-call allocations
        fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def measure(model: Path, data: Path, repeat: int) -> dict[str, Any]:
    from sdk.dataset import load_dataset
    from sdk.pack_build import build_pack

    ds = load_dataset(data)
    conv = ds.split("test")[0]
    context = [{"speaker": t.speaker, "text": t.text} for t in conv.context]
    with tempfile.TemporaryDirectory(prefix="intra-features-") as tmp:
        pack = build_pack(data, model, Path(tmp) / "pack", progress=False, providers="cpu")
        calls, plain = variants(model, Path(tmp) / "pack", context, pack.ids[0])
        ms = time_round_robin(calls, repeat)
        precision = plain.bundle.precision
    base = ms["plain"]
    from sdk.cpu import cpu_info

    return {"model": str(model), "data": str(data), "cpu": cpu_info()["summary"], "precision": precision, "repeat": repeat,
            "stickers": len(pack), "ms": ms, "overhead": {k: v / base - 1.0 for k, v in ms.items() if k != "plain"}}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Cost of rank()'s optional features ({r['data']}, {r['stickers']} stickers, {r['precision']})", "",
             f"CPU: {r['cpu']}. Median of {r['repeat']} calls each, round-robin in one run.", "",
             "| rank() with | ms | vs plain rank() |", "|---|---|---|", f"| nothing (plain) | {r['ms']['plain']:.2f} | - |"]
    lines += [f"| {k} | {r['ms'][k]:.2f} | {100 * v:+.1f}% |" for k, v in r["overhead"].items()]
    return "\n".join(lines) + "\n"


@app.command()
def main(model: Path = typer.Option(..., help="Model bundle."), data: Path = typer.Option(..., help="Dataset directory."),
         out: Path = typer.Option(..., help="Directory for features.json and features.md."),
         repeat: int = typer.Option(200, min=1, help="Calls per variant.")) -> None:
    """Time rank() with each optional feature against a plain rank(), in one run."""
    r = measure(model, data, repeat)
    write_result(out, "features", r, markdown(r))


if __name__ == "__main__":
    app()
