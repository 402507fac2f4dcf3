"""Fewer FLOPs per rank: shallower text encoders distilled from trained runs, measured for speed and quality.

    python -m experiments.distilled --teacher RUN [--teacher RUN ...] --out DIR [--layers 3] [--epochs 3]

For each teacher (one per seed): `intra distill` writes a student run, both are exported (fp32 and
int8), and both are ranked through the SDK at the precision it picks on this CPU: quality on the
validation split (where the keep-or-drop decision is made) and the test split, and rank() at batch
1 on a 6-turn chat, teacher and student timed alternately in this process. The student is kept
when it is at least 2x faster at no more than 1 point of MRR lost. Writes DIR/distilled.json and
DIR/distilled.md.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# six turns of an ordinary chat, about 60 tokens: the case the 2x target is stated for
SIX_TURN_CHAT = ["hey, are you still coming tonight?", "yes! running a bit late though", "no worries, we saved you a seat",
                 "you're the best, the traffic is awful", "take your time, the movie starts at nine",
                 "perfect, see you soon and thanks again"]
KEEP_SPEEDUP = 2.0
KEEP_MRR_LOSS = 1.0
QUALITY_KEYS = ("MRR", "R@10", "mAP")


def _quality(bundle: Path, data: Path, split: str) -> dict[str, float]:
    from sdk.dataset import load_dataset
    from training.bundle_eval import sdk_scores
    from training.metrics import retrieval_metrics

    ds = load_dataset(data)
    convs = ds.split(split)
    _, scores = sdk_scores(bundle, data, convs)
    index = ds.sticker_index()
    labels, _ = ds.sticker_labels()
    m = retrieval_metrics(scores, np.array([index[c.gold] for c in convs]), labels)
    return {k: round(100 * m[k], 3) for k in QUALITY_KEYS}


def _rank_ms(bundles: dict[str, Path], data: Path, repeat: int) -> dict[str, float]:
    """rank() p50 of each bundle on the 6-turn chat, one thread, every bundle in turn for 3 rounds
    (the best median kept), so that a change in the machine's load hits all of them alike."""
    from benchmarks.measure import timed
    from sdk.bundle import Bundle
    from sdk.pack_build import build_pack
    from sdk.ranker import Ranker

    rankers = {}
    with tempfile.TemporaryDirectory(prefix="intra-distilled-") as tmp:
        for name, path in bundles.items():
            model = Bundle(path, providers="cpu", threads=1)
            build_pack(data, model, Path(tmp) / name, progress=False)
            rankers[name] = Ranker(model, Path(tmp) / name)
        best = {name: float("inf") for name in rankers}
        for _ in range(3):
            for name, ranker in rankers.items():
                best[name] = min(best[name], timed(partial(ranker.rank, SIX_TURN_CHAT), repeat)["p50_ms"])
    return best


def time_rows(rows: list[dict[str, Any]], repeat: int) -> None:
    """Time every teacher and student together and set each row's rank_ms and speedup."""
    bundles = {f"{i}/{n}": Path(b) for i, r in enumerate(rows) for n, b in r["bundles"].items()}
    data = {f"{i}/{n}": Path(r["data"]) for i, r in enumerate(rows) for n in r["bundles"]}
    ms: dict[str, float] = {}
    for path in sorted(set(data.values())):  # one pack per dataset and bundle
        ms.update(_rank_ms({k: b for k, b in bundles.items() if data[k] == path}, path, repeat))
    for i, r in enumerate(rows):
        r["rank_ms"] = {n: ms[f"{i}/{n}"] for n in r["bundles"]}
        r["speedup"] = r["rank_ms"]["teacher"] / r["rank_ms"]["student"]


def measure_teacher(teacher: Path, out: Path, layers: int, epochs: int, extra_max: int,
                    data: Path | None = None) -> dict[str, Any]:
    """Distil, export both, measure the quality of both (timed later, all together)."""
    from export.exporter import export_run
    from sdk.bundle import Bundle, is_current
    from training.distill import DistillConfig, distill, read_record
    from training.run_dir import read_config

    data = data or Path(read_config(teacher)["dataset"]["path"])
    student = out / "students" / f"{teacher.name}-{layers}l"
    if not (student / "model.safetensors").is_file():
        distill(teacher, student, DistillConfig(layers=layers, epochs=epochs, extra_max=extra_max), data)
    bundles = {}
    for name, run in (("teacher", teacher), ("student", student)):
        bundles[name] = out / "bundles" / f"{teacher.name}-{name}"
        if not is_current(bundles[name]):
            export_run(run, bundles[name], precisions=("fp32", "int8"), data=data, progress=False)
    splits = ("validation", "test")
    quality = {name: {s: _quality(b, data, s) for s in splits} for name, b in bundles.items()}
    return {"teacher": str(teacher), "student": str(student), "distill": read_record(student), "data": str(data),
            "bundles": {n: str(b) for n, b in bundles.items()},
            "precision": {n: Bundle(b, providers="cpu").precision for n, b in bundles.items()},
            "quality": quality, "mrr_delta": {s: quality["student"][s]["MRR"] - quality["teacher"][s]["MRR"] for s in splits}}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means and stds over teachers, and the keep decision (on validation)."""
    def stat(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    out: dict[str, Any] = {"speedup": stat([r["speedup"] for r in rows]),
           "mrr_delta_validation": stat([r["mrr_delta"]["validation"] for r in rows]),
           "mrr_delta_test": stat([r["mrr_delta"]["test"] for r in rows])}
    out["kept"] = out["speedup"]["mean"] >= KEEP_SPEEDUP and out["mrr_delta_validation"]["mean"] >= -KEEP_MRR_LOSS
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [f"# Distilled text encoders ({result['layers']} of 6 layers) on {result['data']}", "",
             f"CPU: {result['cpu']['summary']}. rank() p50 at batch 1 on a 6-turn chat (about 60 tokens), one thread, "
             "teacher and student alternately in one process, each at the precision the SDK picks on this CPU.", "",
             "| teacher | precision (teacher / student) | teacher ms | student ms | speedup | split | teacher MRR / R@10 / mAP | "
             "student MRR / R@10 / mAP |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        for split in ("validation", "test"):
            t, st = r["quality"]["teacher"][split], r["quality"]["student"][split]
            lines.append(f"| {r['teacher']} | {r['precision']['teacher']} / {r['precision']['student']} | "
                         f"{r['rank_ms']['teacher']:.2f} | {r['rank_ms']['student']:.2f} | {r['speedup']:.2f}x | {split} | "
                         + " / ".join(f"{t[k]:.1f}" for k in QUALITY_KEYS) + " | " + " / ".join(f"{st[k]:.1f}" for k in QUALITY_KEYS) + " |")
    lines += ["", f"Speedup {s['speedup']['mean']:.2f}x ± {s['speedup']['std']:.2f}; MRR change {s['mrr_delta_validation']['mean']:+.2f} "
              f"± {s['mrr_delta_validation']['std']:.2f} on validation, {s['mrr_delta_test']['mean']:+.2f} ± {s['mrr_delta_test']['std']:.2f} "
              f"on test. Kept (>= {KEEP_SPEEDUP}x and <= {KEEP_MRR_LOSS} point of validation MRR lost): "
              f"{'yes' if s['kept'] else 'no'}."]
    return "\n".join(lines) + "\n"


@app.command()
def main(
    teacher: list[Path] = typer.Option([], "--teacher", help="A trained run (repeat for several seeds)."),
    out: Path = typer.Option(..., help="Directory for students, bundles, distilled.json and distilled.md."),
    layers: int = typer.Option(3, min=1, help="Student text-encoder layers."),
    epochs: int = typer.Option(3, min=1, help="Distillation epochs."),
    extra_max: int = typer.Option(4096, min=0, help="Extra intention-only comments among the distillation texts."),
    repeat: int = typer.Option(50, min=1, help="Timed rank() calls per round (3 rounds)."),
    data: Path | None = typer.Option(None, help="Dataset directory. [default: each teacher's]"),
    retime: bool = typer.Option(False, help="Only time again the bundles of an earlier OUT/distilled.json (on a quiet machine)."),
) -> None:
    """Distil, export and measure shallower text encoders against their teachers."""
    import json

    from sdk import atomic
    from sdk.cpu import cpu_info

    if not retime and not teacher:
        raise typer.BadParameter("give at least one --teacher (or --retime with an earlier OUT)")
    if retime:
        rows = json.loads((out / "distilled.json").read_text(encoding="utf-8"))["rows"]
    else:
        rows = [measure_teacher(t, out, layers, epochs, extra_max, data) for t in teacher]
    time_rows(rows, repeat)
    result = {"layers": layers, "data": str(data) if data else "each teacher's dataset",
              "cpu": cpu_info(), "rows": rows, "summary": summary(rows)}
    atomic.write_json(out / "distilled.json", result)
    text = markdown(result)
    atomic.write_text(out / "distilled.md", text)
    typer.echo(text)


if __name__ == "__main__":
    app()
